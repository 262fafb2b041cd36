"""Monitoring: soft sensors, state estimation, batch MSPC and alarms."""
