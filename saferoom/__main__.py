"""`python -m saferoom`: the command line."""

from saferoom.cli import app

app(prog_name="saferoom")
