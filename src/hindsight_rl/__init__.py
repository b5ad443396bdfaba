"""hindsight-rl: transfer reinforcement learning with hindsight fine-tuning, as a Kedro project."""

__version__ = "0.1.0"
