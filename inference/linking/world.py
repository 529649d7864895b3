"""The curated part of the graph: places (countries, blocs, financial centres) and institutions (central banks,
regulators, exchanges, agencies, international bodies). Written by hand for finmon; tested in
tests/inference/test_linking.py. A curated node owns its aliases: "Fed" or "SEC" never links to a company.
"""

from __future__ import annotations

from inference.linking.graph import INSTITUTION, PLACE, Node

# id code, display name, aliases (short forms, demonyms, official names)
_PLACES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("US", "United States", ("U.S.", "US", "USA", "U.S.A.", "United States of America", "America", "American",
                             "Americans", "the States")),
    ("GB", "United Kingdom", ("UK", "U.K.", "Britain", "Great Britain", "British", "England", "English")),
    ("CN", "China", ("PRC", "People's Republic of China", "Chinese", "Mainland China", "Beijing")),
    ("JP", "Japan", ("Japanese", "Tokyo")),
    ("DE", "Germany", ("German", "Germans", "Berlin")),
    ("FR", "France", ("French", "Paris")),
    ("IT", "Italy", ("Italian", "Rome")),
    ("ES", "Spain", ("Spanish", "Madrid")),
    ("CA", "Canada", ("Canadian", "Ottawa")),
    ("MX", "Mexico", ("Mexican",)),
    ("BR", "Brazil", ("Brazilian",)),
    ("AR", "Argentina", ("Argentine", "Argentinian")),
    ("IN", "India", ("Indian", "New Delhi")),
    ("RU", "Russia", ("Russian", "Russian Federation", "Moscow", "Kremlin")),
    ("UA", "Ukraine", ("Ukrainian", "Kyiv", "Kiev")),
    ("IL", "Israel", ("Israeli",)),
    ("IR", "Iran", ("Iranian", "Tehran")),
    ("SA", "Saudi Arabia", ("Saudi", "Saudis", "Riyadh", "KSA")),
    ("AE", "United Arab Emirates", ("UAE", "U.A.E.", "Emirati", "Dubai", "Abu Dhabi")),
    ("QA", "Qatar", ("Qatari",)),
    ("TR", "Turkey", ("Turkish", "Türkiye", "Ankara")),
    ("KR", "South Korea", ("Korea", "Korean", "Republic of Korea", "Seoul")),
    ("KP", "North Korea", ("DPRK", "Pyongyang")),
    ("TW", "Taiwan", ("Taiwanese", "Taipei")),
    ("HK", "Hong Kong", ("HK", "Hongkong")),
    ("SG", "Singapore", ("Singaporean",)),
    ("AU", "Australia", ("Australian", "Sydney")),
    ("NZ", "New Zealand", ("Kiwi",)),
    ("CH", "Switzerland", ("Swiss", "Zurich", "Geneva")),
    ("NL", "Netherlands", ("Dutch", "Holland", "Amsterdam")),
    ("IE", "Ireland", ("Irish", "Dublin")),
    ("SE", "Sweden", ("Swedish", "Stockholm")),
    ("NO", "Norway", ("Norwegian", "Oslo")),
    ("GR", "Greece", ("Greek", "Athens")),
    ("PL", "Poland", ("Polish", "Warsaw")),
    ("VE", "Venezuela", ("Venezuelan", "Caracas")),
    ("ZA", "South Africa", ("South African",)),
    ("NG", "Nigeria", ("Nigerian",)),
    ("EG", "Egypt", ("Egyptian",)),
    ("ID", "Indonesia", ("Indonesian", "Jakarta")),
    ("VN", "Vietnam", ("Vietnamese", "Viet Nam")),
    ("EU", "European Union", ("EU", "E.U.", "Europe", "European", "Eurozone", "Euro zone", "euro area", "Brussels")),
    ("US-NY", "New York", ("NY", "NYC", "New York City", "Manhattan")),
    ("GB-LND", "London", ("City of London",)),
    ("CN-SH", "Shanghai", ()),
    ("DE-FRA", "Frankfurt", ()),
    ("US-DC", "Washington, D.C.", ("Washington D.C.", "D.C.")),
    ("US-CA", "California", ("Calif.",)),
    ("US-TX", "Texas", ("Tex.",)),
)

# id code, display name, country code ("" for supranational), aliases
_INSTITUTIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("FED", "Federal Reserve", "US", ("Fed", "the Fed", "Federal Reserve Board", "Federal Reserve System", "FOMC",
                                      "Federal Open Market Committee", "Federal Reserve Bank", "US Federal Reserve",
                                      "U.S. Federal Reserve", "US Fed")),
    ("ECB", "European Central Bank", "EU", ("ECB",)),
    ("BOE", "Bank of England", "GB", ("BoE", "BOE")),
    ("BOJ", "Bank of Japan", "JP", ("BoJ", "BOJ")),
    ("PBOC", "People's Bank of China", "CN", ("PBOC", "PBoC", "Chinese central bank")),
    ("SNB", "Swiss National Bank", "CH", ("SNB",)),
    ("BOC", "Bank of Canada", "CA", ()),
    ("RBA", "Reserve Bank of Australia", "AU", ("RBA",)),
    ("RBI", "Reserve Bank of India", "IN", ("RBI",)),
    ("BUBA", "Deutsche Bundesbank", "DE", ("Bundesbank",)),
    ("SEC", "Securities and Exchange Commission", "US", ("SEC", "S.E.C.", "U.S. Securities and Exchange Commission",
                                                        "US SEC", "Securities & Exchange Commission")),
    ("CFTC", "Commodity Futures Trading Commission", "US", ("CFTC",)),
    ("FINRA", "Financial Industry Regulatory Authority", "US", ("FINRA",)),
    ("FDIC", "Federal Deposit Insurance Corporation", "US", ("FDIC",)),
    ("OCC", "Office of the Comptroller of the Currency", "US", ("OCC", "Comptroller of the Currency")),
    ("CFPB", "Consumer Financial Protection Bureau", "US", ("CFPB",)),
    ("FTC", "Federal Trade Commission", "US", ("FTC",)),
    ("DOJ", "U.S. Department of Justice", "US", ("DOJ", "Justice Department", "Department of Justice")),
    ("TREASURY", "U.S. Treasury", "US", ("Treasury", "Treasury Department", "US Treasury", "Department of the Treasury",
                                         "U.S. Treasury Department")),
    ("IRS", "Internal Revenue Service", "US", ("IRS",)),
    ("FDA", "Food and Drug Administration", "US", ("FDA", "U.S. FDA", "US FDA")),
    ("FAA", "Federal Aviation Administration", "US", ("FAA",)),
    ("FCC", "Federal Communications Commission", "US", ("FCC",)),
    ("EPA", "Environmental Protection Agency", "US", ("EPA",)),
    ("BLS", "Bureau of Labor Statistics", "US", ("BLS", "Labor Department", "Department of Labor")),
    ("DOC", "U.S. Department of Commerce", "US", ("Commerce Department", "Department of Commerce")),
    ("WH", "White House", "US", ("the White House",)),
    ("CONGRESS", "U.S. Congress", "US", ("Congress", "Senate", "House of Representatives", "US Congress")),
    ("FCA", "Financial Conduct Authority", "GB", ("FCA", "UK FCA")),
    ("ESMA", "European Securities and Markets Authority", "EU", ("ESMA",)),
    ("EC", "European Commission", "EU", ("EU Commission",)),
    ("CSRC", "China Securities Regulatory Commission", "CN", ("CSRC",)),
    ("NYSE", "New York Stock Exchange", "US", ("NYSE", "NYSE American", "NYSE Arca", "Big Board")),
    ("NASDAQX", "Nasdaq Stock Market", "US", ("Nasdaq", "NASDAQ", "Nasdaq Composite", "Nasdaq Stock Exchange")),
    ("LSE", "London Stock Exchange", "GB", ("LSE",)),
    ("HKEX", "Hong Kong Stock Exchange", "HK", ("HKEX", "HKSE", "Hong Kong Exchanges")),
    ("SSE", "Shanghai Stock Exchange", "CN", ()),
    ("TSE", "Tokyo Stock Exchange", "JP", ()),
    ("OPEC", "OPEC", "", ("OPEC+", "Organization of the Petroleum Exporting Countries", "OPEC Plus")),
    ("IMF", "International Monetary Fund", "", ("IMF",)),
    ("WB", "World Bank", "", ()),
    ("WTO", "World Trade Organization", "", ("WTO",)),
    ("BIS", "Bank for International Settlements", "", ()),
    ("G7", "G7", "", ("G-7", "Group of Seven")),
    ("G20", "G20", "", ("G-20", "Group of 20", "Group of Twenty")),
)


def curated_nodes() -> list[Node]:
    """The places and institutions, as graph nodes (rank 2: they win over any company sharing an alias)."""
    places = [Node(f"loc:{code}", PLACE, name, aliases, rank=2) for code, name, aliases in _PLACES]
    institutions = [
        Node(f"org:{code}", INSTITUTION, name, aliases, country=f"loc:{country}" if country else "", rank=2)
        for code, name, country, aliases in _INSTITUTIONS
    ]
    return places + institutions
