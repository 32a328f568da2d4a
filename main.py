"""Repository-root entry point: ``python main.py fit --config config/models/<arch>.yaml`` == ``se fit ...``."""

from se_lib.train.cli import main

if __name__ == "__main__":
    main()
