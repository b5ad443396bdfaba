"""A task whose module needs Box2D, as Gymnasium's box2d tasks do: importing it without the
package raises Gymnasium's ``DependencyNotInstalled`` (whether or not Box2D is installed
here, so the tests mean the same on every machine)."""

from gymnasium.error import DependencyNotInstalled

raise DependencyNotInstalled(
    'Box2D is not installed, you can install it by run `pip install swig` followed by '
    '`pip install "gymnasium[box2d]"`')
