"""J&F metrics as the official DAVIS and SA-V tools compute them, dataset readers, benchmark runs."""
