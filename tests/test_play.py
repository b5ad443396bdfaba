import dataclasses
import json
import re
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import safetensors.numpy
import torch

from hindsight_rl.core.actor_critic import GaussianActor
from hindsight_rl.core.config import EnvConfig, NetworkConfig, ObservationConfig
from hindsight_rl.core.evaluation import evaluate_greedy
from hindsight_rl.core.networks import QNetwork
from hindsight_rl.core.policy_file import (
    NumpyPolicy,
    Policy,
    PolicyFileError,
    policy_from_bytes,
    policy_to_bytes,
)
from hindsight_rl.play import main
from tests.conftest import MINIGRID_VIEW, always_forward


def test_play_scores_a_policy_file_from_the_file_alone(tmp_path, capsys):
    torch.manual_seed(0)
    network = QNetwork(2, 3, NetworkConfig(hidden_sizes=(4, 4)))
    path = tmp_path / "policy.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network, env=EnvConfig(id="MountainCar-v0"),
                                            gamma=0.98)))
    assert main([str(path), "--episodes", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["env"] == "MountainCar-v0" and report["episodes"] == 2
    assert report["mean"] == -200.0  # an untrained network never reaches the flag


def test_play_rejects_a_file_that_is_not_a_policy(tmp_path, capsys):
    path = tmp_path / "notes.safetensors"
    path.write_bytes(b"not a policy")
    assert main([str(path)]) == 1
    assert "not a hindsight-rl policy file" in capsys.readouterr().err


MARKER_MODULE = '''
import pathlib, os
pathlib.Path(os.environ["MARKER_PATH"]).write_text("code ran")

def run(*args, **kwargs):
    pathlib.Path(os.environ["MARKER_PATH"]).write_text("code ran")
'''


def _with_env(data: bytes, env_document: dict) -> bytes:
    """A policy file's bytes with the document's env section replaced (tensors unchanged)."""
    tensors = safetensors.numpy.load(data)
    document = json.loads(json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
                          ["__metadata__"]["hindsight_rl"])
    document["env"] = env_document
    return safetensors.numpy.save(tensors, metadata={"hindsight_rl": json.dumps(document)})


def _crafted(tmp_path, monkeypatch, env_document: dict) -> tuple[Path, Path]:
    """A valid policy file whose env section is replaced by ``env_document``, and the marker
    file that the module it names would write if it were ever imported."""
    marker = tmp_path / "marker"
    (tmp_path / "marker_module.py").write_text(MARKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MARKER_PATH", str(marker))
    network = QNetwork(2, 3, NetworkConfig(hidden_sizes=(4, 4)))
    data = policy_to_bytes(Policy(network=network, env=EnvConfig(id="MountainCar-v0"),
                                  gamma=0.98))
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(_with_env(data, env_document))
    return path, marker


@pytest.mark.parametrize("env_document", [
    {"id": "Evil-v0", "entry_point": "marker_module:run", "make_kwargs": {"command": "x"},
     "overrides": {}},
    {"id": "marker_module:MountainCar-v0", "make_kwargs": {}, "overrides": {}},
], ids=["entry_point", "module_prefixed_id"])
def test_a_policy_file_never_chooses_code_to_import(tmp_path, monkeypatch, capsys,
                                                     env_document):
    path, marker = _crafted(tmp_path, monkeypatch, env_document)
    assert main([str(path), "--episodes", "1"]) == 1
    assert "Error:" in capsys.readouterr().err
    with pytest.raises(PolicyFileError):
        policy_from_bytes(path.read_bytes())
    assert not marker.exists()
    assert "marker_module" not in sys.modules


def test_a_custom_env_plays_with_the_entry_point_the_user_gives(tmp_path, capsys):
    network = QNetwork(1, 2, NetworkConfig(hidden_sizes=(4, 4)))
    env = EnvConfig(id="PlayedCorridor-v0", entry_point="tests.conftest:CorridorEnv",
                    max_episode_steps=5)
    path = tmp_path / "corridor.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network, env=env, gamma=0.9)))
    assert main([str(path), "--episodes", "1"]) == 1
    assert "unknown Gymnasium environment 'PlayedCorridor-v0'" in capsys.readouterr().err
    assert main([str(path), "--episodes", "1",
                 "--entry-point", "tests.conftest:CorridorEnv"]) == 0
    assert json.loads(capsys.readouterr().out)["env"] == "PlayedCorridor-v0"


# --- Bad arguments and unplayable files: argparse errors, or one Error: line ----------------

def _policy_file(tmp_path, n_obs: int = 2, n_actions: int = 3,
                 env: EnvConfig | None = None) -> Path:
    """An untrained policy file, for MountainCar-v0 unless ``env`` names another task."""
    network = QNetwork(n_obs, n_actions, NetworkConfig(hidden_sizes=(4, 4)))
    path = tmp_path / "policy.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network,
                                            env=env or EnvConfig(id="MountainCar-v0"),
                                            gamma=0.98)))
    return path


@pytest.mark.parametrize(("arguments", "problem"), [
    (["--episodes", "0"], "argument --episodes: 0 is not >= 1"),
    (["--episodes", "-3"], "argument --episodes: -3 is not >= 1"),
    (["--episodes", "two"], "argument --episodes: 'two' is not an integer"),
    (["--seed", "-1"], r"argument --seed: -1 is not in \[0, 4294967295\]"),
    (["--seed", "4294967295", "--episodes", "2"], "runs past the last seed, 4294967295"),
    (["--record", "out.avi"], "argument --record: 'out.avi': only .gif and .mp4 are written"),
    (["--fps", "0"], r"argument --fps: 0 is not in \[1, 100\]"),
    (["--cycles", "0"], r"argument --cycles: 0 is not in \[1, 64\]"),
    (["--cycles", "2", "--render"], "argument --cycles: not with --render"),
])
def test_bad_arguments_are_argparse_errors(tmp_path, capsys, arguments, problem):
    with pytest.raises(SystemExit) as exit_:
        main([str(_policy_file(tmp_path)), *arguments])
    assert exit_.value.code == 2
    assert re.search(problem, capsys.readouterr().err)


def test_cycles_says_how_the_episodes_ended(tmp_path, capsys):
    """A network that always goes forward in MiniGrid-Empty-5x5 walks into the east wall and
    stays there: every episode ends stuck in the one-step cycle of action 2."""
    path = tmp_path / "forward.safetensors"
    env = EnvConfig(id="MiniGrid-Empty-5x5-v0", success="terminated", observation=MINIGRID_VIEW)
    path.write_bytes(policy_to_bytes(always_forward(env)))
    assert main([str(path), "--episodes", "3", "--cycles", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["endings"] == {"cycle 2": 3} and report["mean"] == 0.0
    assert main([str(path), "--episodes", "3"]) == 0
    assert "endings" not in json.loads(capsys.readouterr().out)


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith("Error: ")
    return line


@pytest.mark.parametrize(("n_obs", "n_actions", "problem"), [
    (4, 3, "the network takes 4-entry observations and gives 3 Q-values, but MountainCar-v0 "
           "gives 2-entry observations and has 3 actions"),
    (2, 2, "the network takes 2-entry observations and gives 2 Q-values, but MountainCar-v0 "
           "gives 2-entry observations and has 3 actions"),
])
def test_a_network_that_does_not_fit_its_env_is_one_error_line(tmp_path, capsys, n_obs,
                                                                 n_actions, problem):
    path = _policy_file(tmp_path, n_obs, n_actions)
    assert main([str(path), "--episodes", "1"]) == 1
    assert _one_error_line(capsys) == f"Error: {path}: {problem}"


def test_an_unknown_env_id_is_one_error_line(tmp_path, capsys):
    path = _policy_file(tmp_path)
    data = _with_env(path.read_bytes(), {"id": "MountainCar-v9", "make_kwargs": {},
                                         "overrides": {}})
    path.write_bytes(data)
    assert main([str(path)]) == 1
    assert _one_error_line(capsys).startswith(
        f"Error: {path}: env.id: unknown Gymnasium environment 'MountainCar-v9'. "
        "Did you mean MountainCar-v0")


def test_a_file_cannot_shorten_the_time_limit_its_threshold_was_set_for(tmp_path, capsys):
    """With 5-step episodes every MountainCar policy would score -5, "solved"."""
    path = _policy_file(tmp_path)
    path.write_bytes(_with_env(path.read_bytes(), {
        "id": "MountainCar-v0", "make_kwargs": {"max_episode_steps": 5}, "overrides": {}}))
    assert main([str(path), "--episodes", "1"]) == 1
    assert "make_kwargs.max_episode_steps: got 5, but MountainCar-v0's reward threshold" \
        in _one_error_line(capsys)


def test_a_versioned_folder_plays_its_latest_version(tmp_path, capsys):
    folder = tmp_path / "pretrained_policy.safetensors"
    for version, n_actions in (("2026-01-01T00.00.00.000Z", 3), ("2026-01-02T00.00.00.000Z", 2)):
        (folder / version).mkdir(parents=True)
        (folder / version / folder.name).write_bytes(
            _policy_file(tmp_path, 2, n_actions).read_bytes())
    assert main([str(folder), "--episodes", "1"]) == 1, "the latest version is the 2-action one"
    assert "2026-01-02T00.00.00.000Z/pretrained_policy.safetensors: the network" \
        in _one_error_line(capsys)
    (folder / "2026-01-03T00.00.00.000Z").mkdir()
    (folder / "2026-01-03T00.00.00.000Z" / folder.name).write_bytes(
        _policy_file(tmp_path).read_bytes())
    assert main([str(folder), "--episodes", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["file"].endswith(
        f"2026-01-03T00.00.00.000Z/{folder.name}")


def test_a_name_outside_a_project_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["mountaincar.seed_0.finetuned_policy"]) == 1
    assert _one_error_line(capsys) == (
        f"Error: mountaincar.seed_0.finetuned_policy: no such file, and {tmp_path} is not a "
        "Kedro project whose catalog could name it")


def test_a_folder_without_versions_is_one_error_line(tmp_path, capsys):
    folder = tmp_path / "empty.safetensors"
    folder.mkdir()
    assert main([str(folder)]) == 1
    assert _one_error_line(capsys) == (
        f"Error: {folder}: a folder without saved versions; expected "
        f"{folder}/<version>/empty.safetensors or a policy file")


# --- Watching a policy: --record and --render ------------------------------------------------

def test_record_writes_the_first_episode_as_a_gif_with_a_frame_per_step(tmp_path, capsys):
    from PIL import Image

    torch.manual_seed(0)
    policy = _policy_file(tmp_path, n_obs=4, n_actions=2, env=EnvConfig(id="CartPole-v1"))
    gif = tmp_path / "watch" / "cartpole.gif"
    assert main([str(policy), "--episodes", "1", "--seed", "7", "--record", str(gif)]) == 0
    report = json.loads(capsys.readouterr().out)
    # CartPole pays 1 a step, so the episode's return is its length: one frame after the
    # reset and one per step.
    steps = report["recorded"]["return"]
    assert report["recorded"]["frames"] == steps + 1 == report["mean"] + 1
    with Image.open(gif) as image:
        assert image.size == (600, 400)
        durations = []
        for index in range(image.n_frames):  # Pillow merges identical consecutive frames,
            image.seek(index)                # adding up their durations
            durations.append(image.info["duration"])
    assert sum(durations) == (steps + 1) * 30  # --fps 30: 3 hundredths of a second a frame
    assert [p.name for p in gif.parent.iterdir()] == ["cartpole.gif"]  # no temporary left


def test_record_writes_an_mp4_video_with_a_frame_per_step(tmp_path, capsys):
    import imageio.v2 as imageio

    torch.manual_seed(0)
    policy = _policy_file(tmp_path, n_obs=4, n_actions=2, env=EnvConfig(id="CartPole-v1"))
    video = tmp_path / "cartpole.mp4"
    assert main([str(policy), "--episodes", "1", "--seed", "7", "--record", str(video)]) == 0
    report = json.loads(capsys.readouterr().out)
    frames = imageio.mimread(video, memtest=False)
    assert len(frames) == report["recorded"]["frames"] == report["recorded"]["return"] + 1
    assert frames[0].shape == (400, 600, 3)  # full size: no resizing to 16-pixel blocks


def test_record_takes_one_file_at_a_time(tmp_path, capsys):
    path = _policy_file(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([str(path), str(path), "--record", str(tmp_path / "out.gif")])
    assert exit_.value.code == 2
    assert "one policy file at a time" in capsys.readouterr().err


def test_render_plays_the_episodes_in_the_envs_window(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # pygame's window, with no display here
    path = _policy_file(tmp_path)
    assert main([str(path), "--episodes", "1", "--render"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"] == -200.0


# --- Continuous actions: a SAC actor's file -------------------------------------------------

def _actor_file(tmp_path, env: EnvConfig | None = None) -> Path:
    """An untrained Pendulum actor (3-entry observations, torque in [-2, 2])."""
    torch.manual_seed(0)
    actor = GaussianActor(3, np.array([-2.0], np.float32), np.array([2.0], np.float32),
                          NetworkConfig(hidden_sizes=(8, 8)))
    with torch.no_grad():  # torques that vary with the state, not all near 0
        actor.head.weight.mul_(5.0)
    path = tmp_path / "actor.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=actor,
                                            env=env or EnvConfig(id="Pendulum-v1"),
                                            gamma=0.99)))
    return path


def _actor_return(path: Path, seed: int) -> float:
    """The file's episode from ``seed`` on a plain ``gymnasium.make`` Pendulum, acting with
    the numpy player one observation at a time."""
    player, env = NumpyPolicy(path.read_bytes()), gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(player.act(obs))
        total += float(reward)
        done = terminated or truncated
    env.close()
    return total


def test_play_plays_an_actor_file_with_its_mean_action(tmp_path, capsys):
    path = _actor_file(tmp_path)
    assert main([str(path), "--episodes", "2", "--seed", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = np.array([_actor_return(path, 5), _actor_return(path, 6)])
    assert report["env"] == "Pendulum-v1" and report["episodes"] == 2
    assert report["mean"] == round(float(expected.mean()), 2)
    assert report["min"] == float(expected.min())


def test_record_writes_an_actor_files_episode(tmp_path, capsys):
    path = _actor_file(tmp_path)
    gif = tmp_path / "pendulum.gif"
    assert main([str(path), "--episodes", "1", "--seed", "5", "--record", str(gif)]) == 0
    recorded = json.loads(capsys.readouterr().out)["recorded"]
    assert recorded["frames"] == 201  # Pendulum's 200 steps and the reset
    assert recorded["return"] == _actor_return(path, 5)
    assert gif.read_bytes().startswith(b"GIF89a")


def test_an_actor_file_on_a_discrete_env_is_one_error_line(tmp_path, capsys):
    path = _actor_file(tmp_path, env=EnvConfig(id="MountainCar-v0"))
    assert main([str(path), "--episodes", "1"]) == 1
    assert _one_error_line(capsys) == (
        f"Error: {path}: the network is a squashed Gaussian actor, which plays continuous "
        "actions, but MountainCar-v0 has 3 discrete actions")


# --- A recurrent (gru) Q-network's file -------------------------------------------------------

CARTPOLE_POSITIONS = EnvConfig(id="CartPole-v1", observation=ObservationConfig(keep=[0, 2]))
"""CartPole with its velocities hidden: what a gru network is for."""


def _gru_file(tmp_path) -> tuple[Path, QNetwork]:
    """An untrained gru network whose actions follow the state, so episodes differ in length
    (most random networks push one way whatever they see)."""
    torch.manual_seed(5)
    network = QNetwork(2, 2, NetworkConfig(hidden_sizes=(16, 8), encoder="gru"),
                       scale=np.array([10.0, 20.0], np.float32))
    with torch.no_grad():
        network.trunk[0].bias.zero_()
        network.head.bias.zero_()
    path = tmp_path / "gru.safetensors"
    path.write_bytes(policy_to_bytes(Policy(network=network, env=CARTPOLE_POSITIONS,
                                            gamma=0.99)))
    return path, network


def _torch_gru_return(network: QNetwork, seed: int) -> float:
    """The network's greedy episode from ``seed`` on a plain ``gymnasium.make`` CartPole,
    shown the positions only, stepped by ``QNetwork.sequence`` carrying its hidden state."""
    env, hidden = gym.make("CartPole-v1"), None
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        with torch.no_grad():
            q_values, hidden = network.sequence(
                torch.as_tensor(obs[[0, 2]], dtype=torch.float32).view(1, 1, 1, 2), hidden)
        obs, reward, terminated, truncated, _ = env.step(int(q_values.argmax()))
        total += float(reward)
        done = terminated or truncated
    env.close()
    return total


def test_a_gru_file_is_evaluated_with_its_memory_episode_by_episode(tmp_path):
    path, network = _gru_file(tmp_path)
    seeds = [11, 12, 13, 14, 17]
    returns = evaluate_greedy(CARTPOLE_POSITIONS, NumpyPolicy(path.read_bytes()).player(),
                              seeds)
    assert np.isfinite(returns).all() and returns.max() > 2 * returns.min()
    assert returns.tolist() == [_torch_gru_return(network, seed) for seed in seeds]


def test_play_and_record_a_gru_file(tmp_path, capsys):
    path, network = _gru_file(tmp_path)
    gif = tmp_path / "gru.gif"
    assert main([str(path), "--episodes", "3", "--seed", "13", "--record", str(gif)]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = np.array([_torch_gru_return(network, seed) for seed in (13, 14, 15)])
    assert report["env"] == "CartPole-v1" and report["episodes"] == 3
    assert report["mean"] == round(float(expected.mean()), 2)
    assert report["recorded"]["return"] == expected[0] == report["recorded"]["frames"] - 1


def test_a_file_with_a_temperature_plays_its_draws_the_same_for_the_same_seed(tmp_path, capsys):
    """The forward-walking network at a temperature far above its Q-values' spread draws
    every action: its episodes no longer all end pushing into the wall."""
    path = tmp_path / "hot.safetensors"
    env = EnvConfig(id="MiniGrid-Empty-5x5-v0", success="terminated", observation=MINIGRID_VIEW)
    path.write_bytes(policy_to_bytes(dataclasses.replace(always_forward(env),
                                                         acting_temperature=100.0)))
    reports = []
    for _ in range(2):
        assert main([str(path), "--episodes", "3", "--cycles", "4", "--seed", "5"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0] == reports[1]
    assert reports[0]["acting"] == {"rule": "boltzmann", "temperature": 100.0}
    assert reports[0]["endings"] != {"cycle 2": 3}
