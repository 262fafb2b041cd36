"""Cost of goods from measured yields and the real schedule."""
