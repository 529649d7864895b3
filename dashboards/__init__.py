"""Floor 3: Grafana dashboards as code (panels, build, push)."""
