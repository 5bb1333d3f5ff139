"""Class and split names, in the order FER-2013 numbers them."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
NUM_CLASSES = len(EMOTIONS)
IMAGE_SIZE = 48
