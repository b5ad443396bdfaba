"""Play a policy file as the file says, from the file alone: ``python -m hindsight_rl.play
FILE``. A Q-network plays its argmax, or draws from ``softmax(Q / temperature)`` where the
file's ``acting`` entry has a temperature (seeded with ``--seed``, so runs repeat).

Builds the environment the file's metadata names (with its overrides), acts with the pure
numpy forward pass, and prints the mean and spread of the returns. ``--record out.gif``
(or ``out.mp4``, with the ``watch`` extra's ffmpeg) also writes the first episode,
``--render`` plays the episodes in the env's window, ``--cycles N`` says how they ended
(success, stuck in a cycle of at most N steps, or neither). ``FILE`` may also be a
versioned dataset's folder (``data/06_models/sources/cartpole/pretrained_policy.safetensors``):
its latest version is played. Bad arguments are argparse errors; a file or environment that
cannot be played is one ``Error:`` line and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hindsight_rl.core.envs import env_info
from hindsight_rl.core.errors import HindsightRLError
from hindsight_rl.core.evaluation import GreedyEvaluator, count_endings, evaluate_greedy
from hindsight_rl.core.policy_file import NumpyPolicy, check_fits_env, env_config_of
from hindsight_rl.core.watch import (
    RECORDINGS,
    episode_frames,
    watch_episodes,
    write_recording,
)

MAX_SEED = 2**32 - 1  # numpy's and Gymnasium's seeds are 32-bit


def _bounded_int(low: int, high: int | None = None) -> type[int]:
    """An argparse type: an integer in ``[low, high]``, refused with argparse's own error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{value} is not {bound}")
        return value

    parse.__name__ = "integer"
    return parse  # type: ignore[return-value]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hindsight_rl.play", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path,
                        help="policy files (.safetensors), versioned dataset folders, or "
                             "catalog dataset names (mountaincar.seed_0.finetuned_policy)")
    parser.add_argument("--episodes", type=_bounded_int(1), default=100,
                        help="episodes per file (>= 1)")
    parser.add_argument("--seed", type=_bounded_int(0, MAX_SEED), default=2_000_000,
                        help="seed of the first episode (>= 0)")
    parser.add_argument("--record", metavar="OUT.gif|OUT.mp4", type=_recording_path,
                        help="write the first episode (seed --seed) as an animated GIF or "
                             "an MP4 video")
    parser.add_argument("--fps", type=_bounded_int(1, 100), default=30,
                        help="frames per second of --record (default 30)")
    parser.add_argument("--cycles", metavar="N", type=_bounded_int(1, 64),
                        help="say how the episodes ended: success, stuck in a cycle of at "
                             "most N steps (observation and action repeating three times), "
                             "or neither; a greedy policy that fails by looping on one "
                             "spot needs other help than one that searches too long")
    parser.add_argument("--render", action="store_true",
                        help="play the episodes in the env's window (needs a display)")
    parser.add_argument("--env", dest="kedro_env", metavar="ENV",
                        help="the project's config environment in which dataset names are "
                             "looked up (default: Kedro's, i.e. local)")
    parser.add_argument("--entry-point", metavar="MODULE:CLASS",
                        help="code of the custom environment the files name (a policy file "
                             "never names code itself)")
    return parser


def _recording_path(text: str) -> Path:
    """An argparse type: where ``--record`` writes, a ``.gif`` or an ``.mp4``."""
    path = Path(text)
    if path.suffix.lower() not in RECORDINGS:
        raise argparse.ArgumentTypeError(f"{text!r}: only {' and '.join(RECORDINGS)} are "
                                         "written")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.record is not None and len(args.files) > 1:
        parser.error("argument --record: one policy file at a time")
    if args.cycles is not None and args.render:
        parser.error("argument --cycles: not with --render")
    if args.seed + args.episodes - 1 > MAX_SEED:
        parser.error(f"argument --seed: {args.seed} + {args.episodes} episodes runs past "
                        f"the last seed, {MAX_SEED}")
    for path in args.files:
        try:
            print(json.dumps(_play(policy_path(path, args.kedro_env), args)))
        except (OSError, HindsightRLError) as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1
    return 0


def policy_path(argument: Path, kedro_env: str | None) -> Path:
    """The file to play: ``argument`` itself or its latest version (:func:`latest_version`),
    or, for a name that is no path (``mountaincar.seed_0.finetuned_policy``), the file that
    dataset of the project in the working directory loads."""
    if argument.exists() or len(argument.parts) > 1 or argument.suffix == ".safetensors":
        return latest_version(argument)
    return catalog_file(str(argument), kedro_env)


def catalog_file(name: str, kedro_env: str | None) -> Path:
    """The latest saved version of the policy dataset ``name`` in the project's catalog
    (Kedro is imported only here: files play with numpy alone)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from hindsight_rl.datasets import PolicyFileDataset

    try:
        bootstrap_project(Path.cwd())
    except RuntimeError:  # Kedro's error outside a project: no metadata in pyproject.toml
        raise HindsightRLError(f"{name}: no such file, and {Path.cwd()} is not a Kedro "
                               "project whose catalog could name it") from None
    with KedroSession.create(project_path=Path.cwd(), env=kedro_env) as session:
        catalog = session.load_context().catalog
    dataset = catalog.get(name)  # None unless the catalog's entries or patterns name it
    if not isinstance(dataset, PolicyFileDataset):
        raise HindsightRLError(f"{name}: not a policy dataset of this project's catalog "
                               f"({type(dataset).__name__ if dataset else 'no such dataset'})")
    return latest_version(Path(str(dataset._filepath)))


def latest_version(path: Path) -> Path:
    """``path`` itself, or for a versioned dataset's folder (``NAME/<version>/NAME``) the file
    of its latest version, as Kedro would load it."""
    if not path.is_dir():
        return path
    versions = sorted(p for p in path.glob(f"*/{path.name}") if p.is_file())
    if not versions:
        raise HindsightRLError(f"{path}: a folder without saved versions; expected "
                               f"{path}/<version>/{path.name} or a policy file")
    return versions[-1]


def _play(path: Path, args: argparse.Namespace) -> dict[str, object]:
    """Returns of one file's policy, summarised, after checking the network fits the
    environment the file names."""
    policy = NumpyPolicy(path.read_bytes(), source=str(path))
    try:
        env = env_config_of(policy.document, args.entry_point)
        info = env_info(env)
    except HindsightRLError as error:
        raise HindsightRLError(f"{path}: {error}") from None
    check_fits_env(policy.document, env.id, info, str(path))
    seeds = range(args.seed, args.seed + args.episodes)
    actions = policy.player(args.seed)
    summary: dict[str, object] = {"file": str(path), "env": env.id, "overrides": env.overrides}
    if "acting" in policy.document:
        summary["acting"] = policy.document["acting"]
    if args.record is not None:
        frames, episode_return = episode_frames(env, actions, args.seed)
        write_recording(frames, args.record, args.fps)
        summary["recorded"] = {"file": str(args.record), "frames": len(frames),
                               "return": episode_return}
    if args.render:
        returns = watch_episodes(env, actions, seeds)
    elif args.cycles is not None:
        evaluator = GreedyEvaluator(env, seeds, longest_cycle=args.cycles)
        try:
            returns = evaluator.run(actions)
        finally:
            evaluator.close()
        summary["endings"] = count_endings(evaluator.successes, evaluator.cycles)
    else:
        returns = evaluate_greedy(env, actions, seeds)
    return {**summary, "episodes": args.episodes, "mean": round(float(returns.mean()), 2),
            "std": round(float(returns.std()), 2), "min": float(returns.min())}


if __name__ == "__main__":
    raise SystemExit(main())
