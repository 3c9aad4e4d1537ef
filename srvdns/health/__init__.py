"""Health checking: check definitions, a checker per kind, damping, and the loop."""
