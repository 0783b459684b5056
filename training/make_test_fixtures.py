"""Tiny random-init generators for the service's tests (test/fixtures/models/); they translate nothing useful.

Usage: .venv/bin/python -m training.make_test_fixtures"""
import os

import torch

from .export import REPO_ROOT, export_model
from .networks import ResnetGenerator, init_weights

FIXTURES = [  # (name, direction, channels, default)
    ('tiny-mr2ct', 'mr2ct', 1, True),
    ('tiny-ct2mr', 'ct2mr', 1, True),
    ('tiny-mr2ct-rgb', 'mr2ct', 3, False),
]
SIZE, NGF, BLOCKS, SEED = 64, 8, 1, 1234


def main() -> None:
    for i, (name, direction, channels, default) in enumerate(FIXTURES):
        torch.manual_seed(SEED + i)
        net = init_weights(ResnetGenerator(channels, channels, ngf=NGF, n_blocks=BLOCKS))
        out_dir = os.path.join(REPO_ROOT, 'test', 'fixtures', 'models', name)
        doc = export_model(net, out_dir, name=name, direction=direction, size=SIZE, default=default,
                           description=f'Tiny random-init {direction} generator for tests only (output is noise)',
                           provenance={'data': 'none: random initialisation for tests, not trained',
                                       'config': {'ngf': NGF, 'n_blocks': BLOCKS, 'channels': channels,
                                                  'seed': SEED + i, 'init': 'normal(0, 0.02)'},
                                       'made_by': 'python3 -m training.make_test_fixtures'})
        print(name, doc['provenance']['export'])


if __name__ == '__main__':
    main()
