// Point store checkpoint files: a round trip of every piece (live rows, keyword / integer / bool
// / float fields with their run references), and damaged or cut files reported as Corruption
// (nothing parsed from them).
#include "src/points/point_checkpoint.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace vectord::points {
namespace {

class PointCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("ckpt_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = dir_ + "/" + kCheckpointFile;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

std::unique_ptr<index::FieldIndex> Field(const std::string& name, PayloadSchemaType type,
                                         const std::vector<Json>& payloads) {
  auto f = index::FieldIndex::Build(name, type, [&](const auto& emit) {
    for (size_t r = 0; r < payloads.size(); ++r) emit(static_cast<InternalId>(r), payloads[r]);
  });
  EXPECT_TRUE(f.ok());
  return std::move(f).value();
}

TEST_F(PointCheckpointTest, RoundTrip) {
  std::vector<Json> payloads;
  for (int r = 0; r < 500; ++r) {
    payloads.push_back(Json{{"k", "v" + std::to_string(r % 9)},
                            {"n", r % 4 == 0 ? Json("x") : Json(r % 13 - 6)},
                            {"b", r % 3 == 0},
                            {"f", r * 0.25}});
  }
  auto kw = Field("k", PayloadSchemaType::kKeyword, payloads);
  auto in = Field("n", PayloadSchemaType::kInteger, payloads);
  auto bo = Field("b", PayloadSchemaType::kBool, payloads);
  auto fl = Field("f", PayloadSchemaType::kFloat, payloads);
  Roaring live, dead1, dead2;
  live.addRange(3, 450);
  dead1.add(7);
  dead2.addRange(100, 120);
  CheckpointHeader h;
  h.cid = 9;
  h.seq = 1234;
  h.rows = 500;
  h.next_run_id = 77;
  {
    auto w = CheckpointWriter::Create(path_, h);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->AddLive(live).ok());
    ASSERT_TRUE((*w)->AddField(*kw, {}).ok());
    ASSERT_TRUE((*w)->AddField(*in, {{5, 400, &dead1}}).ok());
    ASSERT_TRUE((*w)->AddField(*bo, {}).ok());
    ASSERT_TRUE((*w)->AddField(*fl, {{6, 300, &dead1}, {8, 200, &dead2}}).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  auto c = ReadCheckpoint(path_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->header.cid, 9u);
  EXPECT_EQ(c->header.seq, 1234u);
  EXPECT_EQ(c->header.rows, 500u);
  EXPECT_EQ(c->header.next_run_id, 77u);
  EXPECT_EQ(c->live, live);
  ASSERT_EQ(c->fields.size(), 4u);
  const index::FieldIndex* orig[] = {kw.get(), in.get(), bo.get(), fl.get()};
  for (size_t i = 0; i < 4; ++i) {
    const CheckpointField& f = c->fields[i];
    EXPECT_EQ(f.field, orig[i]->field());
    EXPECT_EQ(f.type, orig[i]->type());
    const index::FieldIndex::Values want = orig[i]->ExportValues();
    EXPECT_EQ(f.values.indexed, want.indexed);
    EXPECT_EQ(f.values.uncovered, want.uncovered);
    EXPECT_EQ(f.values.keywords, want.keywords);
    EXPECT_EQ(f.values.integers, want.integers);
    EXPECT_EQ(f.values.bools[0], want.bools[0]);
    EXPECT_EQ(f.values.bools[1], want.bools[1]);
  }
  EXPECT_EQ(c->fields[0].values.keywords.size(), 9u);
  EXPECT_FALSE(c->fields[1].values.uncovered.isEmpty());
  ASSERT_EQ(c->fields[3].runs.size(), 2u);
  EXPECT_EQ(c->fields[3].runs[1].id, 8u);
  EXPECT_EQ(c->fields[3].runs[1].entries, 200u);
  EXPECT_EQ(c->fields[3].runs[1].dead, dead2);
  ASSERT_EQ(c->fields[1].runs.size(), 1u);
  EXPECT_EQ(c->fields[1].runs[0].dead, dead1);

  // Restoring the values gives the same index.
  index::FieldIndex back(JsonPath::Parse("k", "k").value(), PayloadSchemaType::kKeyword);
  back.RestoreValues(std::move(c->fields[0].values));
  EXPECT_EQ(*back.FindKeyword("v3"), *kw->FindKeyword("v3"));
}

TEST_F(PointCheckpointTest, DamageIsCorruption) {
  CheckpointHeader h;
  Roaring live;
  live.addRange(0, 100000);
  {
    auto w = CheckpointWriter::Create(path_, h);
    ASSERT_TRUE((*w)->AddLive(live).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ASSERT_TRUE(ReadCheckpoint(path_).ok());
  const auto size = std::filesystem::file_size(path_);
  for (uint64_t at : {uint64_t{3}, uint64_t{70}, size - 2}) {
    std::filesystem::copy_file(path_, path_ + ".bad",
                               std::filesystem::copy_options::overwrite_existing);
    const int fd = ::open((path_ + ".bad").c_str(), O_RDWR);
    char x;
    ASSERT_EQ(::pread(fd, &x, 1, static_cast<off_t>(at)), 1);
    x ^= 0x10;
    ASSERT_EQ(::pwrite(fd, &x, 1, static_cast<off_t>(at)), 1);
    ::close(fd);
    auto c = ReadCheckpoint(path_ + ".bad");
    EXPECT_EQ(c.status().code(), Status::Code::kCorruption) << at;
    EXPECT_NE(c.status().message().find(path_ + ".bad"), std::string::npos);
  }
  std::filesystem::resize_file(path_, size - 5);
  EXPECT_EQ(ReadCheckpoint(path_).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ReadCheckpoint(dir_ + "/none").status().code(), Status::Code::kNotFound);
  // An unfinished writer leaves no file behind.
  {
    auto w = CheckpointWriter::Create(dir_ + "/x.vdp", h);
    ASSERT_TRUE((*w)->AddLive(live).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/x.vdp.tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/x.vdp"));
}

}  // namespace
}  // namespace vectord::points
