"""hindsight-rl: transfer reinforcement learning with hindsight fine-tuning, as a Kedro project."""

from importlib.metadata import version

__version__ = version("hindsight-rl")
