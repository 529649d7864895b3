"""Build inference/linking/resources/company_aliases.json.gz from the MIT-licensed ticker-sniffer alias list.

Usage: python scripts/company_aliases.py [../shared/data/companies/company_aliases_ticker_sniffer.csv]
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from inference.linking.companies import ALIASES_FILE, build_alias_table
from inference.training.data import default_data_dir


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else default_data_dir() / "companies/company_aliases_ticker_sniffer.csv"
    table = build_alias_table(src)
    ALIASES_FILE.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(ALIASES_FILE, "wb", mtime=0) as fh:  # mtime=0: same input, same bytes
        fh.write(json.dumps(table, separators=(",", ":"), sort_keys=True).encode())
    print(f"{len(table['aliases'])} aliases, {len(table['symbols'])} symbols -> {ALIASES_FILE}")


if __name__ == "__main__":
    main()
