"""The data the README's "Your own data" walkthroughs use (nothing downloaded):

- `digits_png/`: scikit-learn's bundled 8x8 digits as grayscale PNGs in class subfolders
  (`0_zero/`, `1_one/`, ...: sorted names are the label order, as in torchvision's ImageFolder);
- `tiny-bert/` and `reviews.csv`: a tiny, randomly initialized BERT sequence classifier with its
  own tokenizer, and a CSV of sentences with labels (the accuracy of a random model means
  nothing; the walkthrough shows the mechanics).

    python tools/walkthrough_data.py OUT_DIR
"""

import sys
from pathlib import Path

import numpy as np

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a this film movie food service was is wonderful great awful cold slow fast "
    "and but really not").split()


def digits(out: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits
    bunch = load_digits()
    for i, (pixels, label) in enumerate(zip(bunch.images, bunch.target)):
        folder = out / "digits_png" / f"{label}_{NAMES[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        image = (pixels * 255 / 16).round().astype(np.uint8)
        Image.fromarray(image, mode="L").save(folder / f"{i:04d}.png")


def text(out: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).eval().save_pretrained(out / "tiny-bert")
    BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(
        out / "tiny-bert")
    rng = np.random.default_rng(0)
    good, bad = ["wonderful", "great", "fast"], ["awful", "cold", "slow"]
    rows = ["text,label"]
    for i in range(400):
        label = i % 2
        word = rng.choice(good if label else bad)
        subject = rng.choice(["the film", "this movie", "the food", "the service"])
        rows.append(f"{subject} was {'really ' if rng.random() < 0.5 else ''}{word},"
                    f"{'positive' if label else 'negative'}")
    (out / "reviews.csv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "walkthrough")
    digits(target)
    text(target)
    print(f"wrote {target}/digits_png, {target}/tiny-bert and {target}/reviews.csv")
