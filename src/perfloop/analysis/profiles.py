"""Profiles: the model, its formats and where the time goes, in one place.

- :mod:`perfloop.analysis.profile_model`: :class:`Profile`, :class:`Stack`, :class:`Frame`
  and whose code a frame is (:func:`classify_file`, :func:`module_for_file`);
- :mod:`perfloop.analysis.profile_formats`: :func:`from_pyinstrument`, :func:`from_speedscope`,
  :func:`from_cprofile` and :func:`to_speedscope`;
- :mod:`perfloop.analysis.hotspots`: :func:`hot_spots` by self share (or total share) under the
  user hot-spot rule, and :func:`diff_profiles`.

The hypothesis check is :func:`perfloop.analysis.hypothesis.check_hypothesis`; it builds on
these modules, and they do not import it.
"""

from __future__ import annotations

from .hotspots import FrameDelta, HotSpot, diff_profiles, hot_spots, top_user_hot_spot
from .profile_formats import def_line, from_cprofile, from_pyinstrument, from_speedscope, to_speedscope
from .profile_model import (KINDS, OUTSIDE_USER_CODE, UNITS, Frame, Profile, Stack, classify_file,
                            module_for_file)

__all__ = ["KINDS", "OUTSIDE_USER_CODE", "UNITS", "Frame", "FrameDelta", "HotSpot", "Profile", "Stack",
           "classify_file", "def_line", "diff_profiles", "from_cprofile", "from_pyinstrument",
           "from_speedscope", "hot_spots", "module_for_file", "to_speedscope", "top_user_hot_spot"]
