"""The project's multi-task intrapartum network and its multi-task loss.

One light encoder-decoder, three heads, so one ONNX call per frame gives everything the
pipeline needs:

* ``seg_logits``   (N, 3, 256, 256): background / pubic symphysis / fetal head;
* ``plane_logits`` (N, 4): standard_plane, one_structure, not_transperineal, no_anatomy;
* ``aop_hsd``      (N, 2): direct regression of [AoP / 180, HSD_px / 256] (input pixels).

Why this shape: the target is <= 15 ms per 256x256 frame on 2 CPU cores in ONNX Runtime.
A plain U-Net spends most of its time in full-resolution 3x3 convolutions, so this one
(a) enters with a strided stem (the decoder stops at 1/2 resolution and the logits are
upsampled bilinearly: PS/FH boundaries are smooth, so little is lost), and (b) uses
depthwise-separable convolutions everywhere after the stem (roughly 8x fewer multiply-adds
than dense 3x3 at the same width). BatchNorm folds into the convolutions at inference.

The regression head reads the 1/16 decoder map (spatial layout matters for an angle, so it
is flattened rather than globally pooled); the plane head pools the bottleneck.

The loss weights the three tasks by learned homoscedastic uncertainty (Kendall, Gal and
Cipolla, CVPR 2018): L = sum_i exp(-s_i) * L_i + s_i, with s_i = log sigma_i^2 trained
with the network; the s_i live in the loss module, so they are not exported.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workstation.inference.planes import DEFAULT_PLANE_CLASSES

PLANE_CLASSES = DEFAULT_PLANE_CLASSES  # the engine reads the plane output by these names
SEG_CLASSES = 3
REGRESSION_SCALE = (180.0, 256.0)  # raw outputs x scale -> degrees, input pixels
OUTPUT_NAMES = ("seg_logits", "plane_logits", "aop_hsd")
IGNORE_INDEX = -1  # plane target for frames whose class is unknown
DEFAULT_WIDTHS = (24, 40, 80, 128, 192)  # channels at 1/2, 1/4, 1/8, 1/16 and 1/32 resolution (the shipped models)


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SeparableConv(nn.Module):
    """Depthwise 3x3 (spatial) then pointwise 1x1 (channel mixing), each with BN + ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.depthwise = _conv_bn_relu(cin, cin, 3, stride, groups=cin)
        self.pointwise = _conv_bn_relu(cin, cout, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class EncoderStage(nn.Module):
    """Halve the resolution, then refine; a residual on the refinement keeps gradients short."""

    def __init__(self, cin: int, cout: int, blocks: int = 1):
        super().__init__()
        self.down = SeparableConv(cin, cout, stride=2)
        self.refine = nn.ModuleList(SeparableConv(cout, cout) for _ in range(blocks))

    def forward(self, x):
        x = self.down(x)
        for block in self.refine:
            x = x + block(x)
        return x


class DecoderStage(nn.Module):
    """Upsample x2 (bilinear: no checkerboard, cheap), concatenate the skip, fuse."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.cskip = cskip
        self.fuse = nn.Sequential(SeparableConv(cin + cskip, cout), SeparableConv(cout, cout))

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, skip], dim=1))


class PSFHMultiTaskNet(nn.Module):
    """Light U-Net with segmentation, plane and AoP/HSD heads. Input (N, 1, 256, 256), normalised to [-1, 1]."""

    def __init__(self, widths: tuple[int, ...] = DEFAULT_WIDTHS, in_channels: int = 1,
                 input_size: int = 256, regression_hidden: int = 64):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.widths = tuple(widths)
        self.input_size = input_size
        # 1/2 resolution: two dense 3x3 convs (the first strided) see the raw speckle before going separable.
        self.stem = nn.Sequential(_conv_bn_relu(in_channels, w0, 3, 2), _conv_bn_relu(w0, w0, 3, 1))
        self.enc1 = EncoderStage(w0, w1, blocks=1)   # 1/4
        self.enc2 = EncoderStage(w1, w2, blocks=2)   # 1/8
        self.enc3 = EncoderStage(w2, w3, blocks=2)   # 1/16
        self.enc4 = EncoderStage(w3, w4, blocks=2)   # 1/32 bottleneck
        self.dec3 = DecoderStage(w4, w3, w3)         # 1/16
        self.dec2 = DecoderStage(w3, w2, w2)         # 1/8
        self.dec1 = DecoderStage(w2, w1, w1)         # 1/4
        self.dec0 = DecoderStage(w1, w0, w0)         # 1/2
        self.seg_head = nn.Conv2d(w0, SEG_CLASSES, 1)
        self.plane_head = nn.Sequential(nn.Dropout(0.2), nn.Linear(w4, len(PLANE_CLASSES)))
        side = input_size // 16
        self.regression_reduce = _conv_bn_relu(w3, 8, 1)
        self.regression_head = nn.Sequential(nn.Flatten(), nn.Linear(8 * side * side, regression_hidden),
                                             nn.ReLU(inplace=True), nn.Linear(regression_hidden, 2))

    def forward(self, image: torch.Tensor):
        s0 = self.stem(image)
        s1 = self.enc1(s0)
        s2 = self.enc2(s1)
        s3 = self.enc3(s2)
        bottleneck = self.enc4(s3)
        d3 = self.dec3(bottleneck, s3)
        d2 = self.dec2(d3, s2)
        d1 = self.dec1(d2, s1)
        d0 = self.dec0(d1, s0)
        seg = F.interpolate(self.seg_head(d0), size=image.shape[-2:], mode="bilinear", align_corners=False)
        plane = self.plane_head(torch.flatten(F.adaptive_avg_pool2d(bottleneck, 1), 1))
        side = self.input_size // 16
        if d3.shape[-2:] != (side, side):  # a training pass at a lower resolution (train --train-size)
            d3 = F.interpolate(d3, size=(side, side), mode="bilinear", align_corners=False)
        regression = self.regression_head(self.regression_reduce(d3))
        return seg, plane, regression


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _concat_input_map(old: PSFHMultiTaskNet, new: PSFHMultiTaskNet, name: str) -> tuple[int, torch.Tensor] | None:
    """For a tensor of a decoder stage's first layer, which reads the concatenated input [upsampled, skip] that
    both parts widen: the tensor's dimension over those channels (the depthwise conv and its BatchNorm: 0, the
    pointwise conv: 1) and where the old channels sit in the new input. None for any other tensor."""
    stage, _, rest = name.partition(".fuse.0.")
    if not rest or not stage.startswith("dec") or rest.startswith("pointwise.1."):  # pointwise BN: its own outputs
        return None
    old_stage, new_stage = getattr(old, stage), getattr(new, stage)
    upsampled_old, upsampled_new = (s.fuse[0].depthwise[0].in_channels - s.cskip for s in (old_stage, new_stage))
    positions = torch.cat([torch.arange(upsampled_old), upsampled_new + torch.arange(old_stage.cskip)])
    return (1 if rest.startswith("pointwise.") else 0), positions


@torch.no_grad()
def widen_network(old: PSFHMultiTaskNet, widths: tuple[int, ...]) -> PSFHMultiTaskNet:
    """A wider network that computes what ``old`` computes, to go on training with more channels.

    Each layer keeps its old channels first and gains new ones (randomly initialised as a fresh network's). The
    weights that read a new channel into an old one start at zero, so every old channel, and so every output, is
    unchanged, in eval and in train mode (a BatchNorm sees the same batch statistics); the new channels start to
    matter as soon as training moves those weights off zero. Why: a fine-tune of the shipped model at its own
    width stopped improving (see the model card), and training a wider one from scratch does not fit the CPU
    budget.
    """
    if len(widths) != len(old.widths) or any(n < o for n, o in zip(widths, old.widths)):
        raise ValueError(f"widths {tuple(widths)} must each be at least the network's {old.widths}")
    new = PSFHMultiTaskNet(widths=tuple(widths), input_size=old.input_size)
    old_state, state = old.state_dict(), new.state_dict()
    for name, value in old_state.items():
        target = state[name]
        if value.shape == target.shape:
            state[name] = value.clone()
            continue
        concat_dim, concat_positions = _concat_input_map(old, new, name) or (None, None)
        index = []
        for dim, (size_old, size_new) in enumerate(zip(value.shape, target.shape)):
            index.append(concat_positions if dim == concat_dim else torch.arange(size_old))
            if dim == 1 and size_new > size_old:  # a weight reading channels: new inputs stay out of old outputs
                kept = torch.zeros(size_new, dtype=torch.bool)
                kept[index[1]] = True
                target[:, ~kept] = 0.0
        target[torch.meshgrid(*index, indexing="ij")] = value
        state[name] = target
    new.load_state_dict(state)
    return new


def soft_dice_loss(seg_logits: torch.Tensor, target: torch.Tensor, classes=(1, 2), eps: float = 1.0,
                   weights=None) -> torch.Tensor:
    """1 - mean soft Dice over the foreground classes, pooled over the batch (stable when a frame lacks a class);
    ``weights`` (one per class) weight that mean."""
    probs = seg_logits.softmax(dim=1)
    losses = []
    for c in classes:
        p = probs[:, c]
        t = (target == c).float()
        intersection = (p * t).sum()
        losses.append(1.0 - (2.0 * intersection + eps) / (p.sum() + t.sum() + eps))
    if weights is None:
        return torch.stack(losses).mean()
    w = torch.as_tensor(weights, dtype=seg_logits.dtype, device=seg_logits.device)
    return (torch.stack(losses) * w).sum() / w.sum()


def _doubled_axis(mass_map: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (N, H, W) map: the unit vector of twice its principal-axis angle (an axis has no sign, so the angle
    is doubled to make it a direction), from its weighted second moments; and its anisotropy
    (lambda1 - lambda2) / (lambda1 + lambda2) in [0, 1] (0 = round)."""
    _, h, w = mass_map.shape
    ys = torch.arange(h, dtype=mass_map.dtype, device=mass_map.device).view(1, h, 1) / h
    xs = torch.arange(w, dtype=mass_map.dtype, device=mass_map.device).view(1, 1, w) / w
    mass = mass_map.sum((1, 2)) + eps
    cx = (mass_map * xs).sum((1, 2)) / mass
    cy = (mass_map * ys).sum((1, 2)) / mass
    dx, dy = xs - cx.view(-1, 1, 1), ys - cy.view(-1, 1, 1)
    mu20 = (mass_map * dx * dx).sum((1, 2)) / mass
    mu02 = (mass_map * dy * dy).sum((1, 2)) / mass
    mu11 = (mass_map * dx * dy).sum((1, 2)) / mass
    v = torch.stack([mu20 - mu02, 2.0 * mu11], dim=1)
    length = torch.sqrt((v * v).sum(1) + eps * eps)
    return v / length[:, None], length / (mu20 + mu02 + eps)


def ps_axis_loss(seg_logits: torch.Tensor, target: torch.Tensor, min_pixels: int = 30,
                 min_anisotropy: float = 0.3) -> torch.Tensor:
    """How far the predicted pubic symphysis's long axis turns from the reference's: the chord between their
    doubled-angle unit vectors (about the angle difference in radians, times two), averaged over the frames
    whose reference PS is present and elongated. The AoP is measured from that axis, and its direction carries
    most of the AoP error (see the model card), which the Dice loss hardly sees."""
    probs = seg_logits.softmax(dim=1)[:, 1]
    reference = (target == 1).to(probs.dtype)
    predicted_axis, _ = _doubled_axis(probs)
    reference_axis, anisotropy = _doubled_axis(reference)
    valid = (reference.sum((1, 2)) >= min_pixels) & (anisotropy > min_anisotropy)
    if not bool(valid.any()):
        return probs.sum() * 0.0
    chord = torch.sqrt(((predicted_axis - reference_axis) ** 2).sum(1) + 1e-8)
    return chord[valid].mean()


class MultiTaskLoss(nn.Module):
    """CE + Dice for segmentation, CE for the plane, masked smooth-L1 for AoP/HSD, Kendall-weighted."""

    TASKS = ("seg", "plane", "regression")

    def __init__(self, learn_weights: bool = True, ps_dice_weight: float = 1.0, ps_axis_weight: float = 0.0):
        super().__init__()
        # The AoP follows the pubic symphysis axis, the smaller and harder structure: its Dice may count more,
        # and its direction may be trained directly (ps_axis_loss).
        self.dice_weights = (ps_dice_weight, 1.0)
        self.ps_axis_weight = ps_axis_weight
        # s = log(sigma^2); start at 0 (weight 1 for every task).
        self.log_vars = nn.Parameter(torch.zeros(len(self.TASKS)), requires_grad=learn_weights)

    def forward(self, outputs, seg_target, plane_target, regression_target, regression_mask):
        seg_logits, plane_logits, regression = outputs
        seg_loss = F.cross_entropy(seg_logits, seg_target) + soft_dice_loss(seg_logits, seg_target,
                                                                            weights=self.dice_weights)
        axis_loss = None
        if self.ps_axis_weight > 0:
            axis_loss = ps_axis_loss(seg_logits, seg_target)
            seg_loss = seg_loss + self.ps_axis_weight * axis_loss
        if (plane_target != IGNORE_INDEX).any():
            plane_loss = F.cross_entropy(plane_logits, plane_target, ignore_index=IGNORE_INDEX)
        else:
            plane_loss = plane_logits.sum() * 0.0
        mask = regression_mask.float()
        if mask.sum() > 0:
            # x10: targets are fractions (1 deg = 0.0056), so smooth-L1 stays in its quadratic zone otherwise.
            per_item = F.smooth_l1_loss(regression * 10.0, regression_target * 10.0, reduction="none", beta=0.5)
            regression_loss = (per_item * mask[:, None]).sum() / (mask.sum() * 2.0)
        else:
            regression_loss = regression.sum() * 0.0
        parts = torch.stack([seg_loss, plane_loss, regression_loss])
        total = (torch.exp(-self.log_vars) * parts + self.log_vars).sum()
        logged = {name: float(v) for name, v in zip(self.TASKS, parts.detach())}
        if axis_loss is not None:
            logged["ps_axis"] = float(axis_loss.detach())
        return total, logged
