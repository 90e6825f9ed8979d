"""Architectures of the built-in examples.

Plain torch only, no quantgui import: exported standalone scripts copy this file's source so
they can rebuild an example without QuantGUI installed.
"""

import torch
from torch import nn


class DigitsMLP(nn.Module):
    """Linear-heavy classifier of 8x8 digits (dynamic INT8's home ground)."""

    def __init__(self, hidden: int = 1024, depth: int = 3):
        super().__init__()
        layers = [nn.Flatten()]
        width = 64
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class DigitsCNN(nn.Module):
    """Conv + BatchNorm classifier (static INT8, channels-last and freezing apply)."""

    def __init__(self, width: int = 32):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(1, width), *block(width, 2 * width), nn.MaxPool2d(2),
            *block(2 * width, 4 * width), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * 4, 128), nn.ReLU(),
                                        nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class DigitsLSTM(nn.Module):
    """Reads the 8 rows of a digit as a sequence (dynamic LSTM quantization)."""

    def __init__(self, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(8, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class DigitsTransformer(nn.Module):
    """Rows as tokens through nn.TransformerEncoder (the native fast path applies)."""

    def __init__(self, d_model: int = 128, nhead: int = 4, layers: int = 2, ff: int = 256):
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x):
        h = self.encoder(self.embed(x) + self.pos)
        return self.head(h.mean(dim=1))


class FashionCNN(nn.Module):
    """Small CNN for 28x28 Fashion-MNIST (the seed's beginner walkthrough): conv, pool, conv,
    pool, two linear layers."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, 64),
                                        nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x))
