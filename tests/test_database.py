from django.db import connection


def test_postgis_is_reachable_from_the_test_database(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), postgis_full_version()")
        name, version = cursor.fetchone()
    assert name.startswith("test_")
    assert "POSTGIS=" in version
    assert "GEOS=" in version and "PROJ=" in version


def test_geometry_round_trips_through_postgis(db):
    with connection.cursor() as cursor:
        # a point of Hokuei in JGD2011 / plane rectangular zone V (EPSG:6673) back to WGS84
        cursor.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_Transform("
            "ST_SetSRID(ST_MakePoint(133.74, 35.49), 4326), 6673), 4326) AS g) t"
        )
        lon, lat = cursor.fetchone()
    assert abs(lon - 133.74) < 1e-9 and abs(lat - 35.49) < 1e-9
