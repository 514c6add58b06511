"""The mapping network on its own: the running mean of w exists only where asked for."""

import pytest
import torch

from heroforge.nets.mapping import MappingNetwork


def test_updating_w_avg_without_a_running_mean_is_refused():
    mapping = MappingNetwork(z_dim=8, c_dim=0, w_dim=8, num_ws=None, w_avg_beta=None)
    z = torch.randn(4, 8)
    assert mapping(z).shape == (4, 8)
    with pytest.raises(ValueError, match="w_avg_beta is None"):
        mapping(z, update_w_avg=True)
