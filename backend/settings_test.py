"""The test profile: the same settings file, with TSUNAGU_ENV=test."""

import os

os.environ["TSUNAGU_ENV"] = "test"

from backend.settings import *  # noqa: F403
