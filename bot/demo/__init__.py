"""`netlog-bot demo` and `replay`: the whole pipeline on a virtual clock, printed to a terminal."""
