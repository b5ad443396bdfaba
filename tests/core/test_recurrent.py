import numpy as np
import pytest
import torch

from hindsight_rl.core.recurrent import StackedGRU, numpy_gru_step


def _gru(members: int, in_features: int, hidden: int, seed: int = 0) -> StackedGRU:
    torch.manual_seed(seed)
    return StackedGRU(members, in_features, hidden)


def _reference(gru: StackedGRU, k: int) -> torch.nn.GRU:
    """Member ``k`` as an ordinary one-layer ``nn.GRU`` (batch first)."""
    reference = torch.nn.GRU(gru.in_features, gru.hidden, batch_first=True)
    reference.load_state_dict({f"{name}_l0": value
                               for name, value in gru.member(k)._asdict().items()})
    return reference


def test_each_member_is_initialised_as_nn_grucell_initialises_one_cell():
    gru = _gru(2, 3, 5, seed=11)
    torch.manual_seed(11)
    cells = [torch.nn.GRUCell(3, 5), torch.nn.GRUCell(3, 5)]
    for k, cell in enumerate(cells):
        for name, value in gru.member(k)._asdict().items():
            assert torch.equal(value, getattr(cell, name).detach()), (k, name)


@pytest.mark.parametrize(("members", "batch", "steps", "in_features", "hidden"),
                         [(2, 4, 7, 3, 5), (3, 1, 12, 6, 16), (1, 5, 1, 2, 3)])
def test_stacked_gru_equals_nn_gru_run_per_member(members, batch, steps, in_features, hidden):
    gru = _gru(members, in_features, hidden, seed=members)
    x = torch.randn(members, batch, steps, in_features)
    h0 = torch.randn(members, batch, hidden)
    with torch.no_grad():
        hidden_states, last = gru(x, h0)
        assert hidden_states.shape == (members, batch, steps, hidden)
        for k in range(members):
            expected, expected_last = _reference(gru, k)(x[k], h0[k][None])
            torch.testing.assert_close(hidden_states[k], expected, atol=1e-5, rtol=0)
            torch.testing.assert_close(last[k], expected_last[0], atol=1e-5, rtol=0)


def test_weights_changed_after_construction_are_used_and_round_trip_through_load_member():
    gru = _gru(2, 3, 4)
    with torch.no_grad():
        for parameter in gru.parameters():
            parameter.normal_()
    x = torch.randn(2, 3, 6, 3)
    with torch.no_grad():
        hidden_states, _ = gru(x)
        expected, _ = _reference(gru, 1)(x[1])
    torch.testing.assert_close(hidden_states[1], expected, atol=1e-5, rtol=0)
    other = _gru(2, 3, 4, seed=9)
    other.load_member(0, gru.member(1))
    for name, value in other.member(0)._asdict().items():
        assert torch.equal(value, getattr(gru.member(1), name))


def test_a_reset_zeros_the_hidden_state_before_its_step():
    gru = _gru(2, 3, 8)
    x, h0 = torch.randn(2, 4, 10, 3), torch.randn(2, 4, 8)
    reset = torch.zeros(4, 10, dtype=torch.bool)
    reset[1, 6] = True
    reset[3, 0] = True
    with torch.no_grad():
        hidden_states, last = gru(x, h0, reset)
        plain, _ = gru(x, h0)
        fresh_from_6, _ = gru(x[:, 1:2, 6:])
        fresh_from_0, _ = gru(x[:, 3:4])
    torch.testing.assert_close(hidden_states[:, 1:2, 6:], fresh_from_6, atol=1e-6, rtol=0)
    torch.testing.assert_close(hidden_states[:, 3:4], fresh_from_0, atol=1e-6, rtol=0)
    assert torch.equal(hidden_states[:, 1, :6], plain[:, 1, :6]), "before the reset: as ever"
    assert not torch.allclose(hidden_states[:, 1, 6:], plain[:, 1, 6:])
    assert torch.equal(hidden_states[:, [0, 2]], plain[:, [0, 2]]), "other rows untouched"
    assert torch.equal(last, hidden_states[:, :, -1])


def test_a_per_member_reset_leaves_the_other_members_alone():
    gru = _gru(2, 3, 8)
    x, h0 = torch.randn(2, 2, 5, 3), torch.randn(2, 2, 8)
    reset = torch.zeros(2, 2, 5, dtype=torch.bool)
    reset[1, 0, 2] = True
    with torch.no_grad():
        hidden_states, _ = gru(x, h0, reset)
        plain, _ = gru(x, h0)
    assert torch.equal(hidden_states[0], plain[0])
    assert not torch.allclose(hidden_states[1, 0, 2:], plain[1, 0, 2:])


def test_members_never_mix_in_outputs_or_gradients():
    gru = _gru(3, 4, 6)
    x, h0 = torch.randn(3, 5, 7, 4), torch.randn(3, 5, 6)
    changed = x.clone()
    changed[1] = torch.randn(5, 7, 4)
    h0_changed = h0.clone()
    h0_changed[1] = 10.0
    with torch.no_grad():
        base, _ = gru(x, h0)
        other, _ = gru(changed, h0_changed)
    assert torch.equal(base[[0, 2]], other[[0, 2]])
    assert not torch.allclose(base[1], other[1])
    hidden_states, _ = gru(x, h0)
    hidden_states[0].sum().backward()
    for parameter in gru.parameters():
        assert parameter.grad[0].abs().sum() > 0
        assert not parameter.grad[1:].any(), "member 0's loss reaches member 0 alone"


def test_numpy_gru_step_equals_the_torch_cell():
    gru = _gru(2, 5, 7, seed=3)
    x, h = torch.randn(6, 5), torch.randn(6, 7)
    cell = torch.nn.GRUCell(5, 7)
    cell.load_state_dict(gru.member(1)._asdict())
    weights = [w.numpy() for w in gru.member(1)]
    got = numpy_gru_step(x.numpy(), h.numpy(), *weights)
    with torch.no_grad():
        expected = cell(x, h).numpy()
        stacked, _ = gru(torch.stack([x, x])[:, :, None], torch.stack([h, h]))
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got, stacked[1, :, 0].numpy(), atol=1e-6, rtol=0)
    assert got.dtype == np.float32


def test_numpy_gru_step_saturates_without_overflow():
    weights = [np.full((3, 1), 1e4, np.float32), np.zeros((3, 1), np.float32),
               np.zeros(3, np.float32), np.zeros(3, np.float32)]
    with np.errstate(all="raise"):
        h = numpy_gru_step(np.array([[-1.0]], np.float32), np.array([[0.5]], np.float32),
                           *weights)
    np.testing.assert_allclose(h, [[-1.0]])  # z = 0, n = tanh(−1e4) = −1


def _reference_step(gru: StackedGRU, gates_x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """nn.GRUCell's formulas, each operation recorded by autograd."""
    x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
    h_r, h_z, h_n = torch.baddbmm(gru.bias_hh, h, gru.weight_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


@pytest.mark.parametrize("h0_given", [False, True])
def test_written_out_backpropagation_equals_autograd_through_every_step(h0_given):
    torch.manual_seed(0)
    members, batch, steps, in_features, hidden = 3, 5, 7, 4, 6
    gru = StackedGRU(members, in_features, hidden).double()
    x = torch.randn(members, batch, steps, in_features, dtype=torch.float64,
                    requires_grad=True)
    h0 = (torch.randn(members, batch, hidden, dtype=torch.float64, requires_grad=True)
          if h0_given else None)
    reset = torch.rand(members, batch, steps) < 0.2
    weights = torch.randn(members, batch, steps, hidden, dtype=torch.float64)

    def step_by_step() -> tuple[torch.Tensor, torch.Tensor]:
        """The same arithmetic, every operation recorded by autograd."""
        gates_x = torch.baddbmm(gru.bias_ih, x.reshape(members, batch * steps, -1),
                                gru.weight_ih).view(members, batch, steps, -1)
        h = gru.initial_hidden(batch).double() if h0 is None else h0
        outputs = []
        for t in range(steps):
            h = _reference_step(gru, gates_x[:, :, t], h * (~reset[:, :, t, None]).double())
            outputs.append(h)
        return torch.stack(outputs, dim=2), h

    inputs = [x, *([h0] if h0_given else []), *gru.parameters()]
    outputs, last = gru(x, h0, reset)
    expected_outputs, expected_last = step_by_step()
    assert torch.allclose(outputs, expected_outputs) and torch.allclose(last, expected_last)
    got = torch.autograd.grad((outputs * weights).sum() + last.sum(), inputs)
    expected = torch.autograd.grad((expected_outputs * weights).sum() + expected_last.sum(),
                                   inputs)
    for mine, reference in zip(got, expected, strict=True):
        assert torch.allclose(mine, reference, atol=1e-12)
