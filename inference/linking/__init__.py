"""Linking: entity spans to ids (companies, tickers; the knowledge graph)."""
