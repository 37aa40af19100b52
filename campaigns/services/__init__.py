"""Campaign services: segments, the template mapping, the lifecycle, sending and progress."""
