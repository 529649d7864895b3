"""Floor 3: surge detection over the ClickHouse aggregates, notifiers, the always-on runner."""
