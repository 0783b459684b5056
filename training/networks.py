"""CycleGAN networks laid out module-for-module like pytorch-CycleGAN-and-pix2pix (models/networks.py),
so that its released generator checkpoints (e.g. latest_net_G_A.pth) load with strict=True."""
import functools
import math
import typing

import torch
import torch.nn.functional as F
from torch import nn

# CycleGAN's default norm ("--norm instance"): no affine parameters, no running statistics.
instance_norm = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Residual block with reflection padding: x + conv-norm-relu-conv-norm(x)."""

    def __init__(self, dim: int, norm_layer=instance_norm, use_bias: bool = True):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


def binomial_kernel(passes: int, channels: int) -> torch.Tensor:
    """`passes` passes of [1, 2, 1] / 4 in each direction as one depthwise kernel (channels x 1 x k x k): no
    response at the period-2 (Nyquist) frequency, 2^-passes at period 4."""
    taps = torch.tensor([float(math.comb(2 * passes, k)) for k in range(2 * passes + 1)])  # (1 + z)^(2 passes)
    return (taps[:, None] * taps[None, :] / taps.sum() ** 2).expand(channels, 1, len(taps), len(taps)).contiguous()


class BodySettings(typing.NamedTuple):
    """ResnetGenerator.mask_outside_body's thresholds (in the input's [-1, 1]) and sizes (pixels)."""
    threshold: float
    air: float
    opening_px: int
    reach_px: int
    margin_px: int


class InputWindows(nn.Module):
    """Appends to the input one channel per window (low, high) of its first channel, mapped to [-1, 1] and
    clipped: e.g. a CT's brain window, where the 20 HU between CSF and brain are a step of 0.25 in [-1, 1]
    against 0.01 in the full CT window's. In the graph, so the model still takes the service's one channel.
    The windows are a buffer of the state dict: a checkpoint says which it was trained with."""

    def __init__(self, windows: tuple):
        super().__init__()
        self.register_buffer('windows', torch.tensor(windows, dtype=torch.float32).reshape(-1, 2))

    def forward(self, x):
        low, high = self.windows[:, 0].reshape(1, -1, 1, 1), self.windows[:, 1].reshape(1, -1, 1, 1)
        return torch.cat([x, ((x[:, :1] - low) / (high - low) * 2 - 1).clamp(-1, 1)], 1)


def with_windows(pad: nn.Module, windows: tuple) -> nn.Module:
    """The generator's first module: its padding, preceded by InputWindows when there are windows."""
    return nn.Sequential(InputWindows(windows), pad) if windows else pad


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-output_nc, tanh.

    `self.model` indices match the reference implementation: 0 pad, 1 conv, 2 norm, 3 relu, 4-9 downsampling,
    10..10+n_blocks-1 residual blocks, then upsampling, pad, conv, tanh. With input_windows, 0 is
    (InputWindows, pad) and the first convolution takes input_nc + len(input_windows) channels."""

    n_downsampling = 2

    def __init__(self, input_nc: int = 1, output_nc: int = 1, ngf: int = 64, n_blocks: int = 9,
                 norm_layer=instance_norm, smooth_output: int = 0, input_windows: tuple = ()):
        super().__init__()
        use_bias = True  # instance norm has no shift, so convolutions carry the bias (as in the reference)
        model = [with_windows(nn.ReflectionPad2d(3), input_windows),
                 nn.Conv2d(input_nc + len(input_windows), ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf), nn.ReLU(True)]
        for i in range(self.n_downsampling):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        mult = 2 ** self.n_downsampling
        model += [ResnetBlock(ngf * mult, norm_layer, use_bias) for _ in range(n_blocks)]
        for i in range(self.n_downsampling):
            mult = 2 ** (self.n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=use_bias),
                      norm_layer(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)
        self.input_nc, self.output_nc, self.ngf, self.n_blocks = input_nc, output_nc, ngf, n_blocks
        # Not in the state dict: checkpoints stay those of the reference layout, with or without it.
        self.register_buffer('output_filter', None, persistent=False)
        self.smooth_output(smooth_output)
        self.body_settings = None
        self.register_buffer('body_ramp', None, persistent=False)

    @property
    def input_windows(self) -> tuple:
        """The (low, high) windows appended as input channels (InputWindows' buffer), or ()."""
        first = self.model[0]
        return tuple(map(tuple, first[0].windows.tolist())) if isinstance(first, nn.Sequential) else ()

    def add_input_windows(self, windows: tuple) -> 'ResnetGenerator':
        """Fine-tune a generator into one with input windows: the new channels' first-layer weights start at
        zero, so it computes exactly what it did until training teaches it to use them."""
        if self.input_windows:
            raise ValueError(f'the generator already has input windows {self.input_windows}')
        old = self.model[1]
        stem = nn.Conv2d(old.in_channels + len(windows), old.out_channels, kernel_size=7, padding=0, bias=True)
        with torch.no_grad():
            stem.weight.zero_()
            stem.weight[:, :old.in_channels] = old.weight
            stem.bias.copy_(old.bias)
        self.model[0] = with_windows(self.model[0], windows).to(old.weight)
        self.model[1] = stem.to(old.weight)
        return self

    def smooth_output(self, passes: int = 1) -> 'ResnetGenerator':
        """A fixed binomial filter after the tanh, as `passes` passes of [1, 2, 1] / 4 in each direction (0: none).
        One pass has no response at the period-2 (Nyquist) frequency and half at period 4, where the two stride-2
        transposed convolutions put their checkerboard (two passes: a quarter); trained through it, the generator
        keeps the detail below those frequencies."""
        self.output_filter = binomial_kernel(passes, self.output_nc).to(self.model[1].weight.device) if passes else None
        return self

    def mask_outside_body(self, threshold: float, air: float, opening_px: int, reach_px: int, margin_px: int,
                          ramp_passes: int) -> 'ResnetGenerator':
        """Outside the body the input shows, output the generator's own background: its mean over the input's
        air (below `air`) outside the body (-1 where there is none). The body: the input above `threshold`,
        morphologically opened by a (2 opening_px + 1)-square, which leaves what is thicker (a head, not a
        CT's head holder shell, table or cables; beyond the image's edge counts as outside, so a table the
        field of view cuts goes too), then grown back into the thresholded input for reach_px pixels (a
        geodesic reconstruction: a sinus's thin wall, and ears or a nose joined to the head in the slice come
        back; a holder apart from the head does not, one touching it comes back for reach_px), grown by
        margin_px (the skin's partial volume, the output's own blur), its edge softened by ramp_passes passes
        of the output filter's binomial (a cut or box-filtered staircase edge would put back the period-2 and
        -4 energy that filter removes). Pooling, minimum and one convolution, so the exported graph does it.
        Why: the CT->MR generator learns to leave the holder out (the synthesised CTs carry one, their MR
        targets do not) but draws some of it on real CTs' holders."""
        self.body_settings = BodySettings(threshold, air, opening_px, reach_px, margin_px)
        self.body_ramp = binomial_kernel(ramp_passes, 1).to(self.model[1].weight)
        return self

    def body_mask(self, x: torch.Tensor) -> torch.Tensor:
        """1 inside the body, 0 outside, a ramp between (see mask_outside_body)."""
        threshold, _, opening, reach, margin = self.body_settings
        inside = (x[:, :1] > threshold).to(x.dtype)
        # Erosion as the dilation of the outside, which continues beyond the image's edge (padded with 1).
        outside = F.pad(1 - inside, (opening, opening, opening, opening), value=1.0)
        eroded = 1 - F.max_pool2d(outside, 2 * opening + 1, stride=1)
        body = F.max_pool2d(eroded, 2 * opening + 1, stride=1, padding=opening)
        for _ in range(reach):
            body = torch.minimum(F.max_pool2d(body, 3, stride=1, padding=1), inside)
        body = F.max_pool2d(body, 2 * margin + 1, stride=1, padding=margin)
        r = self.body_ramp.shape[-1] // 2
        return F.conv2d(F.pad(body, (r, r, r, r), mode='replicate'), self.body_ramp)

    def forward(self, x):
        y = self.model(x)
        if self.output_filter is not None:
            r = self.output_filter.shape[-1] // 2
            y = F.conv2d(F.pad(y, (r, r, r, r), mode='replicate'), self.output_filter, groups=self.output_nc)
        if self.body_settings is not None:
            mask = self.body_mask(x)
            air = (x[:, :1] < self.body_settings.air).to(x.dtype) * (1 - mask)
            # Per image: the mean over its air pixels; -1 when it has none (a prior of weight 1e-3 pixels).
            background = ((y * air).sum(dim=(2, 3), keepdim=True) - 1e-3) / (air.sum(dim=(2, 3), keepdim=True) + 1e-3)
            y = y * mask + background * (1 - mask)
        return y

    def encoder(self) -> nn.Sequential:
        """Stem and downsampling layers (what --freeze encoder fixes)."""
        return self.model[:4 + 3 * self.n_downsampling]

    def residual_blocks(self) -> nn.Sequential:
        start = 4 + 3 * self.n_downsampling
        return self.model[start:start + self.n_blocks]


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator; with n_layers=3 each output unit sees a 70x70 input patch."""

    def __init__(self, input_nc: int = 1, ndf: int = 64, n_layers: int = 3, norm_layer=instance_norm):
        super().__init__()
        use_bias = True
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=4, stride=2, padding=1,
                                   bias=use_bias),
                         norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        nf_mult_prev, nf_mult = nf_mult, min(2 ** n_layers, 8)
        sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=4, stride=1, padding=1, bias=use_bias),
                     norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True),
                     nn.Conv2d(ndf * nf_mult, 1, kernel_size=4, stride=1, padding=1)]
        self.model = nn.Sequential(*sequence)

    def forward(self, x):
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """CycleGAN's "normal" init: conv weights ~ N(0, gain), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def _drop_instance_norm_stats(state: dict, net: nn.Module) -> dict:
    """Checkpoints saved by PyTorch < 0.4 carry running stats for instance norms that no longer track them;
    the reference's load_networks deletes them the same way before a strict load."""
    norm_names = {name for name, m in net.named_modules() if isinstance(m, nn.InstanceNorm2d)}
    return {k: v for k, v in state.items()
            if not (k.rsplit('.', 1)[0] in norm_names
                    and k.rsplit('.', 1)[1] in ('running_mean', 'running_var', 'num_batches_tracked'))}


def load_cyclegan_generator(path: str, input_nc: int = 1, output_nc: int = 1) -> ResnetGenerator:
    """Load a released CycleGAN generator checkpoint strictly, then adapt it to input_nc/output_nc.

    The checkpoint's own shape (ngf, blocks, channels) is read from its tensors. Greyscale adaptation sums the
    first convolution's RGB filters (a grey image replicated to RGB gives the same response) and averages the
    last convolution's RGB outputs."""
    state = torch.load(path, map_location='cpu')
    if hasattr(state, '_metadata'):
        del state._metadata
    first_w = state['model.1.weight']
    windows = tuple(map(tuple, state['model.0.0.windows'].tolist())) if 'model.0.0.windows' in state else ()
    ngf, ckpt_in = first_w.shape[0], first_w.shape[1] - len(windows)
    n_blocks = len({k.split('.')[1] for k in state if k.startswith('model.') and '.conv_block.' in k})
    last_key = max((k for k in state if k.endswith('.weight')), key=lambda k: int(k.split('.')[1]))
    ckpt_out = state[last_key].shape[0]
    net = ResnetGenerator(ckpt_in, ckpt_out, ngf, n_blocks, input_windows=windows)
    net.load_state_dict(_drop_instance_norm_stats(state, net), strict=True)
    return adapt_channels(net, input_nc, output_nc)


def adapt_channels(net: ResnetGenerator, input_nc: int, output_nc: int) -> ResnetGenerator:
    if net.input_nc == input_nc and net.output_nc == output_nc:
        return net
    if input_nc != 1 and input_nc != net.input_nc or output_nc != 1 and output_nc != net.output_nc:
        raise ValueError(f'cannot adapt a {net.input_nc}->{net.output_nc} channel generator to '
                         f'{input_nc}->{output_nc}; only to greyscale (1) or the same count')
    adapted = ResnetGenerator(input_nc, output_nc, net.ngf, net.n_blocks, input_windows=net.input_windows)
    state = net.state_dict()
    first, last = 'model.1', f'model.{len(net.model) - 2}'
    with torch.no_grad():
        if input_nc != net.input_nc:  # the image channels summed; window channels (computed from it) kept
            w = state[f'{first}.weight']
            state[f'{first}.weight'] = torch.cat([w[:, :net.input_nc].sum(dim=1, keepdim=True), w[:, net.input_nc:]], 1)
        if output_nc != net.output_nc:
            state[f'{last}.weight'] = state[f'{last}.weight'].mean(dim=0, keepdim=True)
            state[f'{last}.bias'] = state[f'{last}.bias'].mean(dim=0, keepdim=True)
    adapted.load_state_dict(state, strict=True)
    return adapted
