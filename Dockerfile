# The one videosft cluster image: every node and pod of every cluster file (clusters/aws.yaml,
# clusters/gcp.yaml, clusters/kuberay/*.yaml) runs it; nothing is pip-installed at node start-up.
#
#   docker build -t YOUR_REGISTRY/videosft:ray2.60.0-py311-cu128 .
#   docker push YOUR_REGISTRY/videosft:ray2.60.0-py311-cu128
#
# The tag names the Ray and CUDA it carries (the cluster checks require the Ray version in it).
# Base: Ray's CUDA 12.8 image (driver >= 570, what the AWS DLAMI and the GCP nvidia-570 image give).
FROM rayproject/ray:2.60.0-py311-cu128

# The pinned stack first, in its own layer: torch/vLLM/DeepSpeed/transformers change far less often
# than the code. Versions are in requirements/image-lock.txt (tests/unit/test_image.py).
COPY --chown=ray:users requirements/image-lock.txt /home/ray/videosft/requirements/image-lock.txt
RUN pip install --no-cache-dir -r /home/ray/videosft/requirements/image-lock.txt

# The project itself, constrained to the lock so pip changes nothing installed above
# (videosft.image_lock fails the build if any pinned package is not at its locked version).
COPY --chown=ray:users pyproject.toml README.md /home/ray/videosft/
COPY --chown=ray:users platform /home/ray/videosft/platform
COPY --chown=ray:users jobs /home/ray/videosft/jobs
COPY --chown=ray:users clusters /home/ray/videosft/clusters
RUN pip install --no-cache-dir -c /home/ray/videosft/requirements/image-lock.txt "/home/ray/videosft[vllm]" \
    && python -m videosft.image_lock /home/ray/videosft/requirements/image-lock.txt

# One Hugging Face cache for the whole cluster, on the shared mount every node has at /mnt/shared:
# a model id (model.path=Qwen/...) is downloaded once, by the driver, and read by every node.
ENV HF_HOME=/mnt/shared/huggingface \
    PYTHONUNBUFFERED=1

# RayJobs run `cd /home/ray/videosft && python jobs/<name>.py ...` from the image's own checkout.
WORKDIR /home/ray/videosft
