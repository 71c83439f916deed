"""Profiles of serving logs: mergeable statistics that stand in for the full log.

``hawknb.profile.profile(log)`` (polars, streaming) or ``hawknb.spark.profile(df)`` (Spark)
build one; ``Profile.merge`` combines them; a workspace whose ``profile/`` folder replaces
``serving.parquet`` is triaged from it (see docs/scale.md).
"""

from __future__ import annotations

from .polars_engine import BUCKET, SAMPLE_ROWS, profile
from .schema import PROFILE_DIR, Profile, merge_profiles

__all__ = ["BUCKET", "PROFILE_DIR", "SAMPLE_ROWS", "Profile", "merge_profiles", "profile"]
