"""Testing: SOP Examples as tests, and the pytest plugin."""
