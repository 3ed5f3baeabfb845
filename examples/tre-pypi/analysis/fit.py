"""Fits and scores a classifier: the smallest real use of the stack."""
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

X, y = make_classification(n_samples=600, n_features=8, random_state=0)
frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
train_x, test_x, train_y, test_y = train_test_split(frame, y, random_state=0)
model = LogisticRegression(max_iter=1000).fit(train_x, train_y)
predicted = model.predict(test_x)
print(f"accuracy {np.mean(predicted == test_y):.3f} on {len(test_y)} rows")
