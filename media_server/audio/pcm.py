"""The PCM sample type every module passes around: mono s16 in a NumPy array."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
