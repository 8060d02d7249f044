"""Drop-in replacements for other agent libraries, running on planloop's engine."""
