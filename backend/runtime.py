"""The interpreter's cyclic garbage collector, set for a long-lived server process.

A process that has loaded Django, the URL patterns and the API's schemas holds about 190,000
tracked objects that live as long as it does. With CPython's default thresholds (700, 10, 10) a
request that builds many short-lived objects (a sync push of 100 visits makes a few thousand
dicts) sets off several young collections and, every hundred of them, a full one that walks
every object of the process again: measured, 2.4 ms of a 100-visit push's 28 ms of Python.

`settle()` moves what is alive once the application is loaded into the permanent generation
(gc.freeze: never walked again, and pages shared with forked workers stay shared) and collects
the young generation after 50,000 new containers instead of 700. Garbage with reference cycles is
still collected, later; a request's own objects are freed by reference counting as before.
gunicorn's master calls it once, before forking its workers (backend/gunicorn.conf.py); the
in-process benches call it too, so that they measure the process as it serves."""

import gc

YOUNG = 50_000  # new container objects between collections of the youngest generation
MIDDLE = 20  # young collections between collections of the middle generation
OLD = 100  # middle collections between full collections


def settle() -> None:
    """Load the URL patterns (and with them the API and its schemas), collect once, freeze what is
    left, and set the thresholds. Call it once the application is loaded, before serving."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - importing the URLconf builds the API once, here
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
