"""J&F metrics as the official DAVIS and SA-V tools compute them, dataset readers, benchmark runs."""
from .benchmark import Report, evaluate_davis, evaluate_sav
from .metrics import boundary_f, region_similarity

__all__ = ["Report", "boundary_f", "evaluate_davis", "evaluate_sav", "region_similarity"]
