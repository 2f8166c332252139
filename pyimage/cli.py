"""pyimage's command line (issue 7: not implemented yet; says so instead of pretending)."""
import sys


def main(argv=None):
    sys.stderr.write("pyimage: not implemented yet (issue 7)\n")
    return 1
