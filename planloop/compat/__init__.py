"""Drop-in replacements for other agent libraries, running on planloop's engine."""

__all__: list[str] = []
