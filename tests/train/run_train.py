"""``python run_train.py CONFIG [KEY=VALUE ...]``: train_main in a fresh process.

Used by the kill/resume test and, under ``torch.distributed.run``, by the DDP test. Running the
file puts this folder on ``sys.path``, so configs can name ``tinymodels:TinyConv``.
"""

import sys

from pdekit.train.cli_commands import train_main

if __name__ == "__main__":
    sys.exit(train_main(sys.argv[1], sys.argv[2:]))
