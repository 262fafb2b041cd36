"""Feeding and setpoint strategies (MPC), written back to the plant through the line."""
