"""The memory bank: what is remembered of past frames for each tracked object, and for how long."""
