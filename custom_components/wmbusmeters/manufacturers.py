"""Manufacturer names for the drivers' manufacturer codes (DLMS flag ids), where known.

`wmbusmeters --listmeters` ties each driver to the codes it detects (`KAM,1b,16`); this table
names the common manufacturers. A driver of several manufacturers, or of an unknown one, names
none.
"""

from __future__ import annotations

# Three-letter flag id -> name, for the manufacturers of the drivers users meet most.
MANUFACTURERS: dict[str, str] = {
    "APA": "Apator",
    "AMX": "Apator Metrix",
    "APT": "Apator",
    "BMT": "BMETERS",
    "DME": "Diehl Metering",
    "EFE": "Engelmann",
    "EIE": "Ei Electronics",
    "ELR": "Elster",
    "ELS": "Elster",
    "ELV": "ELV Elektronik",
    "EMH": "EMH metering",
    "GWF": "GWF",
    "HYD": "Diehl Metering (Hydrometer)",
    "ITW": "Itron",
    "KAM": "Kamstrup",
    "KAW": "Kamstrup",
    "LAS": "Lansen Systems",
    "LSE": "Diehl Metering (Sappel)",
    "MAD": "Maddalena",
    "NES": "Apator Norway",
    "QDS": "Qundis",
    "SAP": "Sappel",
    "SEN": "Sensus",
    "SON": "Sontex",
    "SPX": "Sensus",
    "TCH": "Techem",
    "ZRI": "Zenner",
}


def manufacturer_for_codes(codes: tuple[str, ...]) -> str | None:
    """The manufacturer of a driver whose detection codes all name the same one."""
    names = {MANUFACTURERS.get(code) for code in codes}
    if len(names) == 1:
        return names.pop()
    return None
