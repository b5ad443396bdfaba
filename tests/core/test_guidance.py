import pytest
import torch

from hindsight_rl.core.config import FinetuneConfig, NetworkConfig
from hindsight_rl.core.guidance import Guidance, distillation_loss, large_margin_loss
from hindsight_rl.core.networks import QNetwork

PARTS = ("encoder", "trunk", "head")


def test_the_large_margin_loss_is_dqfds_formula_on_a_hand_computed_batch():
    # One member, two rows, three actions; the teacher chose actions 2 and 0.
    q = torch.tensor([[[1.0, 3.0, 2.5], [4.0, 1.0, 3.5]]])
    teacher = torch.tensor([[[2], [0]]])
    # Row 1: max(1 + .8, 3 + .8, 2.5 + 0) - 2.5 = 1.3; row 2: max(4, 1.8, 4.3) - 4 = 0.3.
    loss = large_margin_loss(q, teacher, margin=0.8)
    assert loss.tolist() == pytest.approx([(1.3 + 0.3) / 2])
    agreeing = torch.tensor([[[5.0, 1.0, 2.0]]])
    assert large_margin_loss(agreeing, torch.tensor([[[0]]]), 0.8).item() == 0.0


def test_distillation_is_the_cross_entropy_of_the_teachers_softmax_in_its_value_scale():
    teacher = torch.tensor([[[1.0, 0.5], [-2.0, -1.0]]])  # mean |max Q_T| = (1 + 1) / 2
    q = torch.tensor([[[0.2, 0.4], [0.0, 0.0]]])
    t = 0.5 * 1.0
    expected = sum(-(torch.softmax(teacher[0, i] / t, 0)
                     * torch.log_softmax(q[0, i] / t, 0)).sum() for i in range(2)) / 2
    assert distillation_loss(q, teacher, 0.5).tolist() == pytest.approx([expected.item()])


def test_distillation_ignores_a_shift_of_a_states_values_and_not_a_change_of_ranking():
    teacher = torch.tensor([[[1.0, 0.99, 0.5]]])
    same = distillation_loss(teacher - 0.7, teacher, 0.03)
    assert same.item() == pytest.approx(distillation_loss(teacher, teacher, 0.03).item())
    swapped = torch.tensor([[[0.99, 1.0, 0.5]]])
    assert distillation_loss(swapped, teacher, 0.03).item() > same.item()


def _stack(members: int = 2) -> QNetwork:
    networks = []
    for seed in range(members):
        torch.manual_seed(seed)
        networks.append(QNetwork(3, 2, NetworkConfig(hidden_sizes=(8, 8))))
    return QNetwork.stack(networks)


def test_the_anchor_is_l2_sp_over_the_transferred_parts_that_train():
    online = _stack()
    guidance = Guidance(online, FinetuneConfig(frozen=("trunk",), anchor_coef=0.5),
                        transferred=("trunk", "head"))
    with torch.no_grad():
        online.head.weight.add_(0.1)
        online.trunk[0].weight.add_(1.0)  # frozen: not anchored
        online.encoder[0].weight.add_(1.0)  # not transferred: not anchored
    expected = 0.5 * (0.1 ** 2) * online.head.weight[0].numel()
    obs = torch.zeros(2, 4, 3)
    assert guidance.loss(online(obs), obs).tolist() == pytest.approx([expected] * 2, rel=1e-4)


def test_the_teacher_needs_every_part_and_teaches_its_own_greedy_action():
    online = _stack()
    assert Guidance(online, FinetuneConfig(teacher_coef=1.0), ("trunk",)).teacher is None
    guidance = Guidance(online, FinetuneConfig(teacher_coef=1.0), PARTS)
    obs = torch.randn(2, 16, 3)
    with torch.no_grad():
        online.head.bias[:, 0, 0] += 100.0  # the student now always prefers action 0
        q = online(obs)
    teacher_action = guidance.teacher(obs).argmax(dim=2, keepdim=True)
    assert guidance.loss(q, obs).tolist() == pytest.approx(
        (0.3 * large_margin_loss(q, teacher_action, 0.8)).tolist())


def test_a_softmax_teacher_distils_its_own_q_values():
    online = _stack()
    guidance = Guidance(online, FinetuneConfig(teacher_loss="softmax",
                                               teacher_temperature=0.1), PARTS)
    obs = torch.randn(2, 16, 3)
    with torch.no_grad():
        online.head.bias[:, 0, 0] += 1.0
        q = online(obs)
    assert guidance.loss(q, obs).tolist() == pytest.approx(
        (0.3 * distillation_loss(q, guidance.teacher(obs), 0.1)).tolist())


def test_a_solved_teacher_weighs_its_full_coefficient_an_unsolved_one_the_lighter():
    online = _stack()
    guidance = Guidance(online, FinetuneConfig(teacher_coef=2.0, unsolved_teacher_coef=0.5),
                        PARTS, threshold=100.0)
    guidance.observe(0, 100.0, online)  # at the threshold: solved
    guidance.observe(1, 99.0, online)
    assert guidance.weight.tolist() == [2.0, 0.5]
    guidance.observe(1, 101.0, online)  # the member passed its teacher, and the threshold
    assert guidance.weight.tolist() == [2.0, 2.0]
    restored = Guidance(online, FinetuneConfig(teacher_coef=2.0, unsolved_teacher_coef=0.5),
                        PARTS, threshold=100.0)
    restored.load_state(*guidance.state())
    assert restored.weight.tolist() == [2.0, 2.0]
    without_threshold = Guidance(online, FinetuneConfig(), PARTS)
    without_threshold.observe(0, 1e9, online)
    assert without_threshold.weight[0] == pytest.approx(0.3)  # "solved" needs a threshold


def test_the_teacher_is_the_best_policy_each_member_has_shown():
    online = _stack()
    guidance = Guidance(online, FinetuneConfig(teacher_coef=2.0), PARTS)
    start = guidance.teacher.state_dict()
    for k in (0, 1):
        guidance.observe(k, 100.0, online)  # the first curve point: the teacher's own score
    with torch.no_grad():
        for parameter in online.parameters():
            parameter.add_(1.0)  # both members move on
    guidance.observe(0, 90.0, online)   # worse than its teacher: the teacher stays
    guidance.observe(1, 120.0, online)  # better: its weights now teach it
    teacher = guidance.teacher.state_dict()
    for key, value in teacher.items():
        assert torch.equal(value[0], start[key][0]), key
        assert torch.equal(value[1], online.state_dict()[key][1]), key
    assert guidance.teacher_score == [100.0, 120.0]


def test_the_teacher_keeps_its_weight_until_the_fade_then_falls_linearly_to_zero():
    online = _stack()
    guidance = Guidance(online, FinetuneConfig(teacher_coef=1.0, teacher_fades_from=0.5),
                        PARTS, threshold=100.0)
    for k in (0, 1):
        guidance.observe(k, 100.0, online)
    obs = torch.randn(2, 16, 3)
    with torch.no_grad():
        online.head.bias[:, 0, 0] += 100.0  # the student leaves its teacher's actions
        q = online(obs)
    full = guidance.loss(q, obs)
    assert full.min().item() > 0
    for step, factor in ((0, 1.0), (500, 1.0), (750, 0.5), (1000, 0.0)):
        guidance.at_step(step, total_steps=1000)
        assert guidance.loss(q, obs).tolist() == pytest.approx((factor * full).tolist()), step
    never = Guidance(online, FinetuneConfig(teacher_coef=1.0, teacher_fades_from=None),
                     PARTS, threshold=100.0)
    never.at_step(1000, total_steps=1000)
    assert never.fade == 1.0


def test_a_member_below_what_transfer_gave_it_has_its_teacher_back_at_full_weight():
    online = _stack()
    config = FinetuneConfig(teacher_coef=1.0, teacher_fades_from=0.0)
    guidance = Guidance(online, config, PARTS, threshold=100.0)
    for k in (0, 1):
        guidance.observe(k, 100.0, online)  # what transfer gave each member
    obs = torch.randn(2, 16, 3)
    with torch.no_grad():
        online.head.bias[:, 0, 0] += 100.0
        q = online(obs)
    full = guidance.loss(q, obs)
    guidance.at_step(1000, total_steps=1000)  # the teacher has faded...
    guidance.observe(1, 60.0, online)  # ...but member 1 fell below its transferred score
    assert guidance.loss(q, obs).tolist() == pytest.approx([0.0, full[1].item()])
    restored = Guidance(online, config, PARTS, threshold=100.0)
    restored.load_state(*guidance.state())
    restored.at_step(1000, total_steps=1000)
    assert restored.loss(q, obs).tolist() == pytest.approx([0.0, full[1].item()])
    guidance.observe(1, 100.0, online)  # recovered: it fades again
    assert guidance.loss(q, obs).tolist() == pytest.approx([0.0, 0.0])
