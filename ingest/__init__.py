"""Floor 2: raw-document records, sources, the transport-agnostic pipeline, the faust worker, ClickHouse storage."""
