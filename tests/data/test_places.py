import pytest

from img2loc.data.places import cell_places, country_name, place_at_scale, reverse_geocode


def test_reverse_geocode_finds_the_nearest_town_and_continent():
    [stuttgart, vegas] = reverse_geocode([48.7758, 36.1716], [9.1829, -115.1391])
    assert stuttgart["cc"] == "DE" and stuttgart["continent"] == "Europe"
    assert stuttgart["city"] == "Stuttgart"
    assert vegas["cc"] == "US" and vegas["continent"] == "North America"


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (2, "Germany"),  # ~2,800 km wide: a country at most
        (3, "Germany"),
        (4, "Baden-Wuerttemberg, Germany"),  # ~700 km: a region
        (5, "Baden-Wuerttemberg, Germany"),
        (6, "Stuttgart, Baden-Wuerttemberg, DE"),  # ~175 km and finer: the town
        (12, "Stuttgart, Baden-Wuerttemberg, DE"),
    ],
)
def test_a_cell_is_named_at_its_own_scale(level, name):
    [found] = reverse_geocode([48.7758], [9.1829])
    assert place_at_scale(found, level) == name
    assert cell_places([48.7758], [9.1829], [level]) == [name]


def test_country_names_are_short_and_unknown_codes_stay():
    assert country_name("KR") == "South Korea"
    assert country_name("US") == "United States"
    assert country_name("XK") == "XK"
    assert country_name("") == "?"
