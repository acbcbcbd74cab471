import flax.linen as nn

class WideNet(nn.Module):
    num_classes: int
    width: int = 64                               # every hidden size grows with it

    @nn.compact
    def __call__(self, x):                        # x: [N, H, W, C]
        x = nn.relu(nn.Conv(self.width // 4, (3, 3), strides=2, name="stem")(x))
        x = nn.relu(nn.Dense(self.width, name="hidden")(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes, name="head")(x)

def make_wide(num_classes, width=64):             # transfer and coord pass width=
    return WideNet(num_classes, width)

class DeclaredNet(WideNet):                       # roles by hand: first matching glob wins
    initbench_roles = {"stem/*": "input", "head/*": "output", "*": "hidden"}

def make_declared(num_classes, width=64):
    return DeclaredNet(num_classes, width)
