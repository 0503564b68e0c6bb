"""Sign-in: the throttle and the second factor."""
