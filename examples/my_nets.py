import flax.linen as nn

class SmallNet(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x):                        # x: [N, H, W, C]
        x = nn.relu(nn.Conv(16, (3, 3), strides=2)(x))
        x = nn.LayerNorm()(x)                     # keeps its own init (scale 1, bias 0)
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))

def make_net(num_classes):
    return SmallNet(num_classes)
