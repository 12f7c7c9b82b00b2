"""Regenerate the compact tables in core/data/ from ../shared/data.

Run from the repository root:  python scripts/derive_data.py [SHARED_DATA_DIR]
Needs pandas (not a simrun dependency). Every output is described, with its
sources, in core/data/SOURCES.md.
"""

from __future__ import annotations

import re
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
OUT = Path("core/data")

# 2024 electoral votes by state (apportionment after the 2020 census; 538 in all).
ELECTORAL_VOTES = {
    "AL": 9,
    "AK": 3,
    "AZ": 11,
    "AR": 6,
    "CA": 54,
    "CO": 10,
    "CT": 7,
    "DE": 3,
    "DC": 3,
    "FL": 30,
    "GA": 16,
    "HI": 4,
    "ID": 4,
    "IL": 19,
    "IN": 11,
    "IA": 6,
    "KS": 6,
    "KY": 8,
    "LA": 8,
    "ME": 4,
    "MD": 10,
    "MA": 11,
    "MI": 15,
    "MN": 10,
    "MS": 6,
    "MO": 10,
    "MT": 4,
    "NE": 5,
    "NV": 6,
    "NH": 4,
    "NJ": 14,
    "NM": 5,
    "NY": 28,
    "NC": 16,
    "ND": 3,
    "OH": 17,
    "OK": 7,
    "OR": 8,
    "PA": 19,
    "RI": 4,
    "SC": 9,
    "SD": 3,
    "TN": 11,
    "TX": 40,
    "UT": 6,
    "VT": 3,
    "VA": 13,
    "WA": 12,
    "WV": 4,
    "WI": 10,
    "WY": 3,
}
REGIONS = {1: "Northeast", 2: "Midwest", 3: "South", 4: "West"}
DIVISIONS = {
    1: "New England",
    2: "Middle Atlantic",
    3: "East North Central",
    4: "West North Central",
    5: "South Atlantic",
    6: "East South Central",
    7: "West South Central",
    8: "Mountain",
    9: "Pacific",
}
AGE_BANDS = [(18, 29, "18-29"), (30, 44, "30-44"), (45, 64, "45-64"), (65, 200, "65+")]
EDUCATION = ["less than high school", "high school", "associate degree", "bachelor's degree", "graduate degree"]


def states() -> pd.DataFrame:
    e = pd.read_csv(SHARED / "elections/us_president_by_state_2024.csv", dtype={"state_fips": str})
    pep = pd.read_csv(SHARED / "census/pep_sc-est2021-agesex-civ.csv.gz")
    pep = pep[(pep.SUMLEV == 40) & (pep.SEX == 0) & (pep.AGE == 999)]
    geo = pep.set_index("STATE")[["REGION", "DIVISION"]]
    out = pd.DataFrame(
        {
            "state_fips": e.state_fips.astype(int),
            "state": e.state_po,
            "name": e.state.str.title().str.replace(" Of ", " of "),
        }
    )
    out["region"] = out.state_fips.map(geo.REGION).map(REGIONS)
    out["division"] = out.state_fips.map(geo.DIVISION).map(DIVISIONS)
    assert out.region.notna().all() and len(out) == 51
    return out.sort_values("state").reset_index(drop=True)


def president(st: pd.DataFrame) -> None:
    e = pd.read_csv(SHARED / "elections/us_president_by_state_2024.csv")
    out = e[["state_po", "dem_votes", "rep_votes", "total_votes", "dem_two_party_share"]].rename(
        columns={"state_po": "state"}
    )
    out["electoral_votes"] = out.state.map(ELECTORAL_VOTES)
    assert out.electoral_votes.sum() == 538
    out.sort_values("state").to_csv(OUT / "president_2024.csv", index=False)


def band(age: int) -> str:
    return next(label for lo, hi, label in AGE_BANDS if lo <= age <= hi)


def detailed_tables(st: pd.DataFrame) -> pd.DataFrame:
    """The ACS 2018 1-year detailed tables of the 50 states and DC."""
    d = pd.read_csv(SHARED / "census/acs2018_1yr_state_detailed_tables_long.csv.gz")
    return d[d.state_fips.isin(st.state_fips)]


def census_controls(st: pd.DataFrame, d: pd.DataFrame, adults_per_household: pd.Series) -> None:
    rows = []

    def cell(fips: int, variable: str) -> float:
        return float(d[(d.state_fips == fips) & (d.variable == variable)].estimate.iloc[0])

    def adults(fips: int, table: str) -> tuple[dict, float]:
        """Adults by sex x age band from a B01001-shaped table; also their total."""
        t = d[(d.state_fips == fips) & (d.table == table)]
        by = {}
        for _, r in t.iterrows():
            parts = r.label.split("!!")
            if len(parts) != 3:
                continue
            sex = parts[1].lower()
            lo = int("".join(ch for ch in parts[2].split()[0] if ch.isdigit()) or 0)
            if parts[2].startswith("Under") or lo < 18:
                continue
            key = (sex, band(lo))
            by[key] = by.get(key, 0.0) + (0.0 if pd.isna(r.estimate) else r.estimate)
        return by, sum(by.values())

    for _, s in st.iterrows():
        fips = s.state_fips
        sex_age, total = adults(fips, "B01001")
        for (sex, age_band), n in sorted(sex_age.items()):
            rows.append((s.state, "B01001", "sex_age", f"{sex}|{age_band}", n))

        # Race/ethnicity of adults: B01001I (Hispanic), B01001H (White alone, not Hispanic),
        # B01001B / B01001D (Black / Asian alone, any origin) scaled to their non-Hispanic
        # share from B03002 (all ages); everyone else is "other". Where the 1-year file
        # suppresses a race table (e.g. B01001B for MT), the group's all-ages share in
        # B03002 times the adult total stands in for it.
        def group(table: str, b03002: str, hispanic_b03002: str | None = None) -> float:
            n = adults(fips, table)[1]
            if n == 0:
                n = (
                    total
                    * (cell(fips, b03002) + (cell(fips, hispanic_b03002) if hispanic_b03002 else 0))
                    / cell(fips, "B03002_001")
                )
            if hispanic_b03002:
                n *= cell(fips, b03002) / (cell(fips, b03002) + cell(fips, hispanic_b03002))
            return n

        hispanic = group("B01001I", "B03002_012")
        white = group("B01001H", "B03002_003")
        black = group("B01001B", "B03002_004", "B03002_014")
        asian = group("B01001D", "B03002_006", "B03002_016")
        other = total - hispanic - white - black - asian
        assert other > 0, s.state
        for race, n in (("white", white), ("black", black), ("hispanic", hispanic), ("asian", asian), ("other", other)):
            rows.append((s.state, "B01001B/D/H/I,B03002", "race_ethnicity", race, n))
        # Education of adults 25+ (B15002); the 18-24s form their own cell so totals agree.
        t = d[(d.state_fips == fips) & (d.table == "B15002")]
        education = dict.fromkeys(EDUCATION, 0.0)
        for _, r in t.iterrows():
            parts = r.label.split("!!")
            if len(parts) != 3:
                continue
            level = parts[2]
            if "High school" in level or "Some college" in level:
                key = "high school"
            elif level.startswith("Associate"):
                key = "associate degree"
            elif level.startswith("Bachelor"):
                key = "bachelor's degree"
            elif level.startswith(("Master", "Professional", "Doctorate")):
                key = "graduate degree"
            else:
                key = "less than high school"
            education[key] += r.estimate
        under25 = sum(n for (sex, b), n in sex_age.items() if b == "18-29") - sum(
            cell(fips, v) for v in ("B01001_011", "B01001_035")
        )  # 18-29 minus 25-29 = 18-24
        scale = (total - under25) / sum(education.values())
        for level, n in education.items():
            rows.append((s.state, "B15002", "education", level, n * scale))
        rows.append((s.state, "B01001", "education", "under 25", under25))
        # Marital status of adults (B12001 counts people 15+): the 15-17s (B01001), nearly all never married, come off.
        m = d[(d.state_fips == fips) & (d.table == "B12001")].set_index("variable").estimate
        for sex, base, teens in (("male", 2, "B01001_006"), ("female", 11, "B01001_030")):
            v = lambda k: float(m[f"B12001_{base + k:03d}"])  # noqa: E731
            marital = {
                "never married": v(1) - cell(fips, teens),
                "married": v(2) - v(5),
                "separated": v(5),
                "widowed": v(7),
                "divorced": v(8),
            }
            assert marital["never married"] > 0, s.state
            rows += [(s.state, "B12001", "sex_marital", f"{sex}|{k}", n) for k, n in marital.items()]
        state_rows = d[d.state_fips == fips]
        rows += employment_controls(state_rows, s.state, sex_age)
        rows += citizenship_controls(state_rows.set_index("variable").estimate, s.state, sex_age)
        households = households_by_income(state_rows)
        by_income = households * adults_per_household
        rows += [
            (s.state, "B19001 x DP02/DP03/DP05", "household_income", band, n * total / by_income.sum())
            for band, n in by_income.items()
        ]
    out = pd.DataFrame(rows, columns=["state", "table", "dimension", "category", "count"])
    out["count"] = out["count"].round(1)
    out.to_csv(OUT / "acs2018_adult_controls.csv", index=False)
    cvap_controls(st, d)


# B19001's household income bands (lower edge in 2018 dollars), as the household_income attribute names them
INCOME_BANDS = {
    0: "under $10,000",
    10_000: "$10,000 to $14,999",
    15_000: "$15,000 to $19,999",
    20_000: "$20,000 to $24,999",
    25_000: "$25,000 to $29,999",
    30_000: "$30,000 to $34,999",
    35_000: "$35,000 to $39,999",
    40_000: "$40,000 to $44,999",
    45_000: "$45,000 to $49,999",
    50_000: "$50,000 to $59,999",
    60_000: "$60,000 to $74,999",
    75_000: "$75,000 to $99,999",
    100_000: "$100,000 to $124,999",
    125_000: "$125,000 to $149,999",
    150_000: "$150,000 to $199,999",
    200_000: "$200,000 or more",
}
INCOME_EDGES = [*INCOME_BANDS, np.inf]
# CPI-U, U.S. city average, all items, annual average (BLS series CUUR0000SA0); the GSS asks for last year's income
CPI_U = {2017: 245.120, 2018: 251.107, 2020: 258.811, 2021: 270.970, 2023: 304.702}


def households_by_income(t: pd.DataFrame) -> pd.Series:
    """Households per income band (B19001_002..017) of the given rows, summed over states."""
    t = t[(t.table == "B19001") & (t.variable != "B19001_001")]
    counts = t.groupby("variable").estimate.sum()
    assert len(counts) == len(INCOME_BANDS)
    return pd.Series(counts.values, index=list(INCOME_BANDS.values()))


def income_range(label: str) -> tuple[float, float | None]:
    """A GSS income16 label as [low, high) dollars; high is None for the open top band."""
    amounts = [float(a.replace(",", "")) for a in re.findall(r"\$([\d,]+)", label)]
    if label.startswith("under"):
        return 0.0, amounts[0]
    return (amounts[0], None) if "over" in label else (amounts[0], amounts[1] + 1)


def share_above(x: float, low: float, high: float | None, alpha: float) -> float:
    """The share of a range's families with more than x dollars: even within [low, high), Pareto above an open low."""
    if high is None:
        return 1.0 if x <= low else (low / x) ** alpha
    return float(np.clip((high - x) / (high - low), 0.0, 1.0))


def gss_household_income(seed: pd.DataFrame, national: pd.Series) -> None:
    """P(B19001 band in 2018 dollars | GSS year, income16 label), written to gss_household_income.csv.

    The GSS asks for last year's family income in that year's dollars: each
    label's range is restated in 2018 dollars by CPI-U and spread over the
    bands it overlaps, evenly within the range; the open top ("$170,000 or
    over") follows a Pareto tail whose exponent makes the nation's share of
    $200,000+ among households over $150,000 what B19001 says.
    """
    alpha = np.log(national.iloc[-1] / national.iloc[-2:].sum()) / np.log(150_000 / 200_000)
    rows = []
    for year, label in sorted(set(zip(seed.gss_year, seed.family_income))):
        low, high = (x * CPI_U[2018] / CPI_U[year - 1] if x is not None else None for x in income_range(label))
        for (lower, upper), band in zip(pairwise(INCOME_EDGES), INCOME_BANDS.values()):
            share = share_above(lower, low, high, alpha) - share_above(upper, low, high, alpha)
            if share > 1e-6:
                rows.append({"gss_year": year, "family_income": label, "household_income": band, "share": share})
    out = pd.DataFrame(rows)
    out["share"] /= out.groupby(["gss_year", "family_income"]).share.transform("sum")
    out.to_csv(OUT / "gss_household_income.csv", index=False, float_format="%.6f")


# DP03's household income bands (2023 dollars): lower edge -> label
DP03_INCOME = {
    0: "Less than $10,000",
    10_000: "$10,000 to $14,999",
    15_000: "$15,000 to $24,999",
    25_000: "$25,000 to $34,999",
    35_000: "$35,000 to $49,999",
    50_000: "$50,000 to $74,999",
    75_000: "$75,000 to $99,999",
    100_000: "$100,000 to $149,999",
    150_000: "$150,000 to $199,999",
    200_000: "$200,000 or more",
}


def adults_per_household(p: pd.DataFrame) -> pd.Series:
    """Adults per household in each B19001 band, nation-wide, from the ACS 2023 profiles (50 states summed).

    B19001 counts households; personas are adults, and richer households hold
    more of them. DP03 gives the income of all households and of families; the
    rest are nonfamily households. Nonfamily households hold DP02's
    householders living alone (1 adult) and the others (2 adults: roommates,
    unmarried partners); family households hold the rest of the adults in
    households (DP05's adults x DP02's share of people in households). A band's
    adults per household is then its family and nonfamily households' mix.
    Each B19001 band takes the DP03 band its midpoint falls in, in 2023 dollars.
    """
    value = national_totals(p)
    income = "Estimate!!INCOME AND BENEFITS (IN 2023 INFLATION-ADJUSTED DOLLARS)!!"
    households = np.array([value[f"{income}Total households!!{b}"] for b in DP03_INCOME.values()])
    families = np.array([value[f"{income}Families!!{b}"] for b in DP03_INCOME.values()])
    nonfamily = households - families
    by_type = "Estimate!!HOUSEHOLDS BY TYPE!!Total households!!"
    alone = sum(
        value[f"{by_type}{sex} householder, no spouse/partner present!!Householder living alone"]
        for sex in ("Male", "Female")
    )
    adults = value["Estimate!!SEX AND AGE!!Total population!!18 years and over"] * (
        value["Estimate!!RELATIONSHIP!!Population in households"] / value["Estimate!!SEX AND AGE!!Total population"]
    )
    nonfamily_adults = alone + 2 * (nonfamily.sum() - alone)
    per_band = (
        (adults - nonfamily_adults) / families.sum() * families + nonfamily_adults / nonfamily.sum() * nonfamily
    ) / households
    midpoints = [low if high == np.inf else (low + high) / 2 for low, high in pairwise(INCOME_EDGES)]
    dp03 = [np.searchsorted(list(DP03_INCOME), m * CPI_U[2023] / CPI_U[2018], side="right") - 1 for m in midpoints]
    return pd.Series(per_band[dp03], index=list(INCOME_BANDS.values()))


EMPLOYMENT = {
    "In Armed Forces": "armed forces",
    "Employed": "employed",
    "Unemployed": "unemployed",
    "Not in labor force": "not in labor force",
}


def employment_controls(t: pd.DataFrame, state: str, sex_age: dict) -> list[tuple]:
    """Adults by sex x age band x employment status: B23001's status shares applied to B01001's adults.

    B23001 starts at 16; its 16-19 group stands in for the 18-19s (their shares,
    scaled to B01001's count), so every band's total equals B01001's exactly.
    """
    counts: dict[tuple[str, str, str], float] = {}
    for _, r in t[t.table == "B23001"].iterrows():
        parts = r.label.split("!!")
        if len(parts) < 4 or parts[-1] not in EMPLOYMENT:
            continue
        lo = int(parts[2].split()[0])
        key = (parts[1].lower(), band(max(lo, 18)), EMPLOYMENT[parts[-1]])
        counts[key] = counts.get(key, 0.0) + r.estimate
    rows = []
    for (sex, age_band), n in sorted(sex_age.items()):
        statuses = {k: counts.get((sex, age_band, k), 0.0) for k in EMPLOYMENT.values()}
        total = sum(statuses.values())
        rows += [
            (state, "B23001 x B01001", "sex_age_employment", f"{sex}|{age_band}|{k}", n * v / total)
            for k, v in statuses.items()
        ]
    return rows


def citizenship_controls(t: pd.Series, state: str, sex_age: dict) -> list[tuple]:
    """Adults by sex x citizenship (B05003) and by citizenship x age band (citizens from B29001, the rest of B01001's
    adults).
    """
    rows = []
    for sex, base in (("male", 8), ("female", 19)):
        adults = sum(n for (s, _), n in sex_age.items() if s == sex)
        assert abs(t[f"B05003_{base:03d}"] - adults) / adults < 0.001, (state, sex)
        for offset, status in ((1, "born a citizen"), (3, "naturalized citizen"), (4, "not a citizen")):
            rows.append((state, "B05003", "sex_citizenship", f"{sex}|{status}", t[f"B05003_{base + offset:03d}"]))
    for i, (_, _, label) in enumerate(AGE_BANDS, start=2):
        adults = sum(n for (_, b), n in sex_age.items() if b == label)
        citizens = t[f"B29001_{i:03d}"]
        assert 0 < citizens <= adults, (state, label)
        rows += [
            (state, "B29001", "citizenship_age", f"citizen|{label}", citizens),
            (state, "B29001 x B01001", "citizenship_age", f"not a citizen|{label}", adults - citizens),
        ]
    return rows


def citizen_education(t: pd.Series) -> dict[str, float]:
    """Citizens 18+ by education (B29002): below 9th grade and 9th-12th without diploma are less than high school;
    some college without a degree is high school, as in the GSS degree coding."""
    return {
        "less than high school": t["B29002_002"] + t["B29002_003"],
        "high school": t["B29002_004"] + t["B29002_005"],
        "associate degree": t["B29002_006"],
        "bachelor's degree": t["B29002_007"],
        "graduate degree": t["B29002_008"],
    }


def cvap_controls(st: pd.DataFrame, d: pd.DataFrame) -> None:
    """What citizens 18+ look like per state: sex x citizenship (B05003), age band (B29001), education (B29002).

    The census sampler rakes adults to their controls plus these citizens'
    education (B29002; the non-citizens one cell) and keeps the citizens; the
    fidelity metric scores citizen personas against these. No table here
    crosses race with citizenship, so there is no race target.
    """
    rows = []
    for _, s in st.iterrows():
        t = d[d.state_fips == s.state_fips].set_index("variable").estimate
        sex = {
            "male|born a citizen": t["B05003_009"],
            "male|naturalized citizen": t["B05003_011"],
            "female|born a citizen": t["B05003_020"],
            "female|naturalized citizen": t["B05003_022"],
        }
        assert abs(sum(sex.values()) - t["B29001_001"]) < 1, s.state
        rows += [(s.state, "B05003", "sex_citizenship", k, v) for k, v in sex.items()]
        rows += [
            (s.state, "B29001", "age_band", label, t[f"B29001_00{i}"])
            for i, (_, _, label) in enumerate(AGE_BANDS, start=2)
        ]
        education = citizen_education(t)
        assert abs(sum(education.values()) - t["B29001_001"]) < 1, s.state
        rows += [(s.state, "B29002", "education_18plus", k, v) for k, v in education.items()]
    out = pd.DataFrame(rows, columns=["state", "table", "dimension", "category", "count"])
    out["count"] = out["count"].round(1)
    out.to_csv(OUT / "acs2018_cvap_controls.csv", index=False)


MARITAL = {1: "married", 2: "widowed", 3: "divorced", 4: "separated", 5: "never married"}


def pums_marital() -> None:
    """P(marital status | sex, age) among adults, from ACS PUMS 2013-2017 person records (20 states), weighted."""
    p = pd.read_csv(SHARED / "census/pums_2013_2017_5yr_microweight_acsbig.csv.gz")
    p = p.assign(sex=p.sex.map({1: "male", 2: "female"}), age=p.agep.clip(upper=85), marital_status=p.mar.map(MARITAL))
    counts = p.groupby(["sex", "age", "marital_status"]).pwgtp.sum()
    shares = (counts / counts.groupby(level=["sex", "age"]).transform("sum")).rename("share").reset_index()
    shares.to_csv(OUT / "pums_marital_by_sex_age.csv", index=False, float_format="%.6f")


def gss_seed() -> pd.DataFrame:
    g = pd.read_csv(SHARED / "surveys/gss_2018_2024_persona_frame.csv.gz")
    race_ethnicity = g.racecen1.map(
        {"white": "white", "black or african american": "black", "asian": "asian", "hispanic": "hispanic"}
    ).fillna("other")
    race_ethnicity = race_ethnicity.where(g.hispanic == "not hispanic", "hispanic")
    # the census's race categories; "hispanic" given as a race is what the Census Bureau codes as some other race
    race = g.racecen1.replace(
        {
            "black or african american": "black",
            "other pacific islander": "native hawaiian or other pacific islander",
            "hispanic": "some other race",
        }
    )
    education = g.degree.map(
        {
            "less than high school": "less than high school",
            "high school": "high school",
            "associate/junior college": "associate degree",
            "bachelor's": "bachelor's degree",
            "graduate": "graduate degree",
        }
    )
    out = pd.DataFrame(
        {
            "gss_year": g.year,
            "gss_id": g.id,
            "weight": g.wtssps,
            "age": g.age.astype(int),
            "sex": g.sex,
            "race_ethnicity": race_ethnicity,
            "race": race,
            "hispanic_origin": (race_ethnicity == "hispanic").map(
                {True: "hispanic or latino", False: "not hispanic or latino"}
            ),
            "education": education,
            "family_income": g.income16,
            "lives_alone": np.select([g.hompop == 1, g.hompop > 1], ["yes", "no"], "unknown"),
            "census_region": g.region.str.title(),
            "partyid": g.partyid,
            "polviews": g.polviews,
            "relig": g.relig,
        }
    )
    assert out.notna().all().all()
    out.to_csv(OUT / "gss_seed.csv", index=False)
    return out


# ACS DP03 industry rows (civilian employed 16+) -> the objective tier's industry categories.
INDUSTRY_ROWS = {
    "Agriculture, forestry, fishing and hunting, and mining": "agriculture and mining",
    "Construction": "construction",
    "Manufacturing": "manufacturing",
    "Wholesale trade": "wholesale trade",
    "Retail trade": "retail trade",
    "Transportation and warehousing, and utilities": "transportation and utilities",
    "Information": "information",
    "Finance and insurance, and real estate and rental and leasing": "finance and real estate",
    "Professional, scientific, and management, and administrative and waste management services": (
        "professional and business services"
    ),
    "Educational services, and health care and social assistance": "education and health care",
    "Arts, entertainment, and recreation, and accommodation and food services": "arts, recreation and food services",
    "Other services, except public administration": "other services",
    "Public administration": "public administration",
}


def industry_targets(p: pd.DataFrame) -> None:
    """Per state, the share of people 16+ working in each industry, and not working (ACS 2023 DP03)."""
    p = p[p.table == "DP03"]
    status = "Estimate!!EMPLOYMENT STATUS!!Population 16 years and over"
    industry = "Estimate!!INDUSTRY!!Civilian employed population 16 years and over!!"
    rows = []
    for state, g in p.groupby("state_abbr"):
        value = dict(zip(g.label, g.value))
        population = value[status]
        armed = value[status + "!!In labor force!!Armed Forces"]
        employed = value[status + "!!In labor force!!Civilian labor force!!Employed"]
        counts = {category: value[industry + label] for label, category in INDUSTRY_ROWS.items()}
        assert abs(sum(counts.values()) - employed) <= 5, (state, sum(counts.values()), employed)
        counts["public administration"] += armed  # the Armed Forces have no DP03 industry; they serve the public sector
        counts["not working"] = population - employed - armed
        rows += [
            {
                "group": state,
                "attribute": "industry",
                "category": c,
                "share": n / population,
                "source": "census:DP03 ACS 2023 1-year",
            }
            for c, n in counts.items()
        ]
    pd.DataFrame(rows).to_csv(OUT / "acs2023_industry_targets.csv", index=False, float_format="%.6f")


def national_totals(p: pd.DataFrame) -> pd.Series:
    """Each profile estimate summed over the 50 states (DP05 repeats a few rows, such as 18 years and over: counted
    once).
    """
    return p.drop_duplicates(["state_abbr", "label"]).groupby("label").value.sum()


def profiles() -> pd.DataFrame:
    """ACS 2023 1-year state profile estimates (50 states, no DC) as numbers."""
    p = pd.read_csv(SHARED / "census/acs2023_1yr_state_profiles_long.csv.gz")
    return p[p.label.str.contains("Estimate")].assign(value=lambda d: pd.to_numeric(d.value, errors="coerce"))


S2301_EDUCATION = {
    "all": "",
    "less than high school": "!!Less than high school graduate",
    "high school": "!!High school graduate (includes equivalency)",
    "associate degree": "!!Some college or associate's degree",
    "bachelor's degree": "!!Bachelor's degree or higher",
    "graduate degree": "!!Bachelor's degree or higher",
}


def employment_by_education(p: pd.DataFrame) -> None:
    """Employment status of people 25-64 by education, 50 states summed (S2301, ACS 2023): the seed's education
    association.
    """
    t = p[p.table == "S2301"].pivot_table(index="label", columns="state_abbr", values="value")
    rows = []
    for education, suffix in S2301_EDUCATION.items():
        base = "!!Estimate!!EDUCATIONAL ATTAINMENT!!Population 25 to 64 years" + suffix
        people = t.loc["Total" + base]
        participating = t.loc["Labor Force Participation Rate" + base] / 100 * people
        employed = t.loc["Employment/Population Ratio" + base] / 100 * people
        unemployed = t.loc["Unemployment rate" + base] / 100 * participating
        shares = {
            "employed": employed.sum(),
            "unemployed": unemployed.sum(),
            "not in labor force": (people - participating).sum(),
        }
        total = sum(shares.values())
        rows += [
            {
                "education": education,
                "employment_status": k,
                "share": v / total,
                "source": "census:S2301 ACS 2023 1-year, 50 states",
            }
            for k, v in shares.items()
        ]
    pd.DataFrame(rows).to_csv(OUT / "s2301_employment_by_education.csv", index=False, float_format="%.6f")


# Foreign-born people by world region of birth (DP02) -> the race/ethnicity most of them report (DP05).
BIRTH_REGIONS = {
    "Europe": "white",
    "Northern America": "white",
    "Asia": "asian",
    "Africa": "black",
    "Latin America": "hispanic",
    "Oceania": "other",
}
DP05_RACE = {
    "hispanic": "!!Hispanic or Latino (of any race)",
    "white": "!!Not Hispanic or Latino!!White alone",
    "black": "!!Not Hispanic or Latino!!Black or African American alone",
    "asian": "!!Not Hispanic or Latino!!Asian alone",
}


def foreign_born_by_race(p: pd.DataFrame) -> None:
    """Share foreign-born per race/ethnicity, 50 states summed (DP02 world region of birth over DP05 race, ACS 2023)."""
    value = national_totals(p)
    region = (
        "Estimate!!WORLD REGION OF BIRTH OF FOREIGN-BORN!!Foreign-born population, excluding population born at sea!!"
    )
    race = "Estimate!!HISPANIC OR LATINO AND RACE!!Total population"
    people = {r: value[race + suffix] for r, suffix in DP05_RACE.items()}
    people["other"] = value[race] - sum(people.values())
    born_abroad = dict.fromkeys(people, 0.0)
    for name, r in BIRTH_REGIONS.items():
        born_abroad[r] += value[region + name]
    rows = [
        {
            "race_ethnicity": r,
            "foreign_born_share": born_abroad[r] / people[r],
            "source": "census:DP02,DP05 ACS 2023 1-year, 50 states",
        }
        for r in people
    ]
    rows.append(
        {
            "race_ethnicity": "all",
            "foreign_born_share": sum(born_abroad.values()) / value[race],
            "source": rows[0]["source"],
        }
    )
    pd.DataFrame(rows).to_csv(OUT / "dp02_foreign_born_by_race.csv", index=False, float_format="%.6f")


if __name__ == "__main__":
    st = states()
    st.to_csv(OUT / "states.csv", index=False)
    president(st)
    detailed = detailed_tables(st)
    profile = profiles()
    gss_household_income(gss_seed(), households_by_income(detailed))
    census_controls(st, detailed, adults_per_household(profile))
    pums_marital()
    industry_targets(profile)
    employment_by_education(profile)
    foreign_born_by_race(profile)
    print("wrote", *sorted(p.name for p in OUT.glob("*.csv")))
