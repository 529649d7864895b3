"""Decoding: model outputs to predictions (labels, scores, entity character spans, rule-based tickers)."""
