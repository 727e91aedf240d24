"""`python -m keras_longtail` runs the command line."""

import sys

from keras_longtail.cli import main

if __name__ == "__main__":
    sys.exit(main())
